package main

import (
	"strconv"

	"github.com/spf13/pflag"

	backendtypes "github.com/tendhq/tend/backend/types"
	"github.com/tendhq/tend/cmd/engined/internal/daemon"
)

// Shared shims (see backend/shimgroup.go): `engined --containers-per-shim N`;
// the CLI has `engine run/create --shim-group KEY`.

// defaultContainersPerShim is a shim per container: a group shares its
// shim's fate (a SIGKILLed shim ends all its containers), which a user
// should choose knowingly; the README gives the memory it saves.
const defaultContainersPerShim = 1

// perShimValue is --containers-per-shim, checked as it is parsed.
type perShimValue struct{ n *int }

func (v perShimValue) String() string { return strconv.Itoa(*v.n) }
func (v perShimValue) Type() string   { return "int" }
func (v perShimValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return backendtypes.CheckContainersPerShim(-1)
	}
	if err := backendtypes.CheckContainersPerShim(n); err != nil {
		return err
	}
	*v.n = n
	return nil
}

// addShimFlags registers the shared-shim flags of `engine daemon`.
func addShimFlags(fl *pflag.FlagSet, o *daemon.Options) {
	o.ContainersPerShim = defaultContainersPerShim
	fl.Var(perShimValue{&o.ContainersPerShim}, "containers-per-shim",
		"pack containers into shared containerd shims of up to N (1: a shim each); a killed shim ends all its containers")
}
