package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"

	"github.com/tendhq/tend/cmd/engine/internal/cli"
)

// daemonBinary is the daemon's binary: the heavy half of tend (containerd
// client, gRPC, CNI), kept out of the CLI so that every CLI command starts
// as fast as a small Go program (see the README's "The CLI is a light binary").
const daemonBinary = "engined"

// newDaemonCommand is `engine daemon ARGS`: it replaces the process with
// `engined ARGS`, so that scripts, units and habits that start the daemon
// through the CLI keep working and the daemon keeps the pid they started.
// Every flag is engined's: see `engine daemon --help`.
func newDaemonCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "daemon [OPTIONS]",
		Short:              "Run the engine daemon in the foreground (runs " + daemonBinary + ", installed next to engine)",
		DisableFlagParsing: true, // engined parses them, --help included
		RunE: func(cmd *cobra.Command, args []string) error {
			exe, _ := os.Executable()
			bin, err := findDaemon(exe, exec.LookPath)
			if err != nil {
				return &cli.StatusError{Code: cli.ExitEngineError, Err: err}
			}
			err = syscall.Exec(bin, append([]string{bin}, args...), os.Environ())
			return &cli.StatusError{Code: cli.ExitEngineError, Err: fmt.Errorf("run %s: %w", bin, err)}
		},
	}
}

// findDaemon finds engined next to the CLI's own binary exe (as installed
// and as built), else in PATH.
func findDaemon(exe string, lookPath func(string) (string, error)) (string, error) {
	if exe != "" {
		if p, err := filepath.EvalSymlinks(exe); err == nil {
			exe = p
		}
		p := filepath.Join(filepath.Dir(exe), daemonBinary)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := lookPath(daemonBinary)
	if err == nil {
		return p, nil
	}
	if !errors.Is(err, exec.ErrNotFound) {
		return "", fmt.Errorf("look for %s in PATH: %w", daemonBinary, err)
	}
	dir := "the engine binary's directory"
	if exe != "" {
		dir = filepath.Dir(exe)
	}
	return "", fmt.Errorf("engine daemon runs the daemon binary %s, which is not installed: install it next to engine (%s) or in PATH, e.g. go build -o %s ./cmd/engined, or run scripts/setup.sh: %w",
		daemonBinary, dir, filepath.Join(dir, daemonBinary), errdefs.ErrNotFound)
}
