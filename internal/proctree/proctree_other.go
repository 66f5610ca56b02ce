//go:build !linux

// Package proctree kills process trees and sessions by walking /proc; it is
// only implemented on Linux.
package proctree

import (
	"fmt"

	"github.com/containerd/errdefs"
)

// KillTree needs /proc and is only implemented on Linux.
func KillTree(pid int) error {
	return fmt.Errorf("kill process tree of %d: only supported on linux: %w", pid, errdefs.ErrNotImplemented)
}

// KillSession needs /proc and is only implemented on Linux.
func KillSession(sid int) (int, error) {
	return 0, fmt.Errorf("kill session %d: only supported on linux: %w", sid, errdefs.ErrNotImplemented)
}

// SessionSize needs /proc and is only implemented on Linux.
func SessionSize(sid int) (int, error) {
	return 0, fmt.Errorf("count session %d: only supported on linux: %w", sid, errdefs.ErrNotImplemented)
}

// KillDescendants needs /proc and is only implemented on Linux.
func KillDescendants(pid int) (int, error) {
	return 0, fmt.Errorf("kill descendants of %d: only supported on linux: %w", pid, errdefs.ErrNotImplemented)
}

// Exited needs /proc: elsewhere every process reads as alive.
func Exited(pid int) bool { return false }
