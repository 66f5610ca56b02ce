package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

// TestFindDaemon: engined next to the CLI first, then in PATH; missing,
// an error of class not-found that names what to install and where.
func TestFindDaemon(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "engine")
	inPath := func(string) (string, error) { return "/opt/bin/engined", nil }
	notInPath := func(string) (string, error) { return "", &exec.Error{Name: "engined", Err: exec.ErrNotFound} }

	if got, err := findDaemon(exe, inPath); err != nil || got != "/opt/bin/engined" {
		t.Errorf("none next to engine: %q, %v; want PATH's", got, err)
	}
	_, err := findDaemon(exe, notInPath)
	if !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "engined") || !strings.Contains(err.Error(), filepath.Join(dir, "engined")) {
		t.Errorf("none anywhere: %v; want a not-found error naming engined and %s", err, dir)
	}
	next := filepath.Join(dir, "engined")
	if err := os.WriteFile(next, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := findDaemon(exe, inPath); err != nil || got != next {
		t.Errorf("next to engine: %q, %v; want %s", got, err, next)
	}
}
