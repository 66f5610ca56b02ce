package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	backendtypes "github.com/tendhq/tend/backend/types"
	"github.com/tendhq/tend/cmd/engine/internal/cli"
	"github.com/tendhq/tend/cmd/internal/api"
	"github.com/tendhq/tend/cmd/internal/format"
)

// confineFlags are run/create's image-config and confinement flags.
type confineFlags struct {
	user, entrypoint, stopSignal, shmSize string
	stopTimeout                           int
	privileged, readOnly                  bool
	capAdd, capDrop, securityOpt, tmpfs   []string
	envFile, ulimits                      []string
}

func (f *confineFlags) register(fl *pflag.FlagSet) {
	fl.StringVarP(&f.user, "user", "u", "", "username or UID (format: name|uid[:group|gid])")
	fl.StringVar(&f.entrypoint, "entrypoint", "", "overwrite the image's ENTRYPOINT (\"\" clears it)")
	fl.StringVar(&f.stopSignal, "stop-signal", "", "signal to stop the container (default: the image's STOPSIGNAL, else SIGTERM)")
	fl.IntVar(&f.stopTimeout, "stop-timeout", 0, "seconds to wait for the stop signal before SIGKILL (-1: forever)")
	fl.BoolVar(&f.privileged, "privileged", false, "give extended privileges: all capabilities and devices, no seccomp")
	fl.BoolVar(&f.readOnly, "read-only", false, "mount the container's root filesystem read-only")
	fl.StringArrayVar(&f.capAdd, "cap-add", nil, "add Linux capabilities (NET_ADMIN, ALL, ...)")
	fl.StringArrayVar(&f.capDrop, "cap-drop", nil, "drop Linux capabilities (NET_RAW, ALL, ...)")
	fl.StringArrayVar(&f.securityOpt, "security-opt", nil, "security options: no-new-privileges, seccomp=unconfined|PROFILE.json")
	fl.StringArrayVar(&f.tmpfs, "tmpfs", nil, "mount a tmpfs directory (/run[:size=64m,mode=1777])")
	fl.StringArrayVar(&f.envFile, "env-file", nil, "read environment variables from a file (NAME=VALUE lines)")
	fl.StringArrayVar(&f.ulimits, "ulimit", nil, "ulimit options (nofile=1024:2048)")
	fl.StringVar(&f.shmSize, "shm-size", "", "size of /dev/shm (e.g. 64m)")
}

var errInvalid = errdefs.ErrInvalidArgument

func engineErr(err error) error { return &cli.StatusError{Code: cli.ExitEngineError, Err: err} }

// apply sets the flags' options in o; --env-file variables go before
// o.Env, which holds the -e ones (docker's order).
func (f *confineFlags) apply(cmd *cobra.Command, o *api.CreateOptions) error {
	o.User, o.StopSignal, o.Privileged, o.ReadonlyRootfs = f.user, f.stopSignal, f.privileged, f.readOnly
	o.CapAdd, o.CapDrop = f.capAdd, f.capDrop
	if cmd.Flags().Changed("entrypoint") {
		o.Entrypoint = []string{f.entrypoint}
	}
	if cmd.Flags().Changed("stop-timeout") {
		t := f.stopTimeout
		o.StopTimeout = &t
	}
	if o.StopSignal != "" {
		if _, err := backendtypes.ParseStopSignal(o.StopSignal); err != nil {
			return engineErr(fmt.Errorf("--stop-signal: %w", err))
		}
	}
	for _, c := range append(append([]string{}, f.capAdd...), f.capDrop...) {
		if _, err := backendtypes.NormalizeCapability(c); err != nil {
			return engineErr(fmt.Errorf("--cap-add/--cap-drop: %w", err))
		}
	}
	var env []string
	for _, p := range f.envFile {
		vars, err := readEnvFile(p)
		if err != nil {
			return engineErr(err)
		}
		env = append(env, vars...)
	}
	o.Env = backendtypes.MergeEnv(env, o.Env)
	for _, s := range f.securityOpt {
		v, err := securityOpt(s)
		if err != nil {
			return engineErr(err)
		}
		o.SecurityOpt = append(o.SecurityOpt, v)
	}
	for _, t := range f.tmpfs {
		dst, opts, _ := strings.Cut(t, ":")
		if o.Tmpfs == nil {
			o.Tmpfs = map[string]string{}
		}
		o.Tmpfs[dst] = opts
	}
	for _, u := range f.ulimits {
		ul, err := backendtypes.ParseUlimit(u)
		if err != nil {
			return engineErr(err)
		}
		o.Ulimits = append(o.Ulimits, ul)
	}
	if f.shmSize != "" {
		n, err := format.ParseMemory(f.shmSize)
		if err != nil {
			return engineErr(fmt.Errorf("--shm-size: %w", err))
		}
		if n <= 0 {
			return invalid("--shm-size %s: want a size above 0, such as 64m", f.shmSize)
		}
		o.ShmSize = n
	}
	return nil
}

// securityOpt reads a seccomp profile named by path into the option, as
// docker's CLI does: the daemon gets the profile's JSON.
func securityOpt(s string) (string, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k != "seccomp" || v == "unconfined" || v == "builtin" {
		return s, nil
	}
	b, err := os.ReadFile(v)
	if err != nil {
		return "", fmt.Errorf("--security-opt seccomp=%s: cannot read the profile: %v: give a readable JSON seccomp profile, or seccomp=unconfined: %w", v, err, errInvalid)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return "", fmt.Errorf("--security-opt seccomp=%s: the profile is not valid JSON: %v: %w", v, err, errInvalid)
	}
	return "seccomp=" + buf.String(), nil
}

// readEnvFile reads docker's --env-file format: NAME=VALUE lines, # for
// comments, a bare NAME takes the CLI's value (dropped when unset).
func readEnvFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--env-file %s: %v: %w", path, err, errInvalid)
	}
	var env []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimLeft(sc.Text(), " \t")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, ok := strings.Cut(line, "=")
		if k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("--env-file %s line %d: %q: want NAME=VALUE (no spaces in NAME): %w", path, n, line, errInvalid)
		}
		if !ok {
			v, set := os.LookupEnv(k)
			if !set {
				continue
			}
			line += "=" + v
		}
		env = append(env, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--env-file %s: %v: %w", path, err, errInvalid)
	}
	return env, nil
}
