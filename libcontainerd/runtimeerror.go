package libcontainerd

import (
	"errors"
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/containerd/ttrpc"

	"github.com/tendhq/tend/libcontainerd/types"
)

// classifyCommandError marks as errdefs.ErrInvalidArgument a start or exec
// error that says the command does not exist or cannot be run: the
// caller's to fix, not a failure of containerd. Any other error is returned
// as is.
func classifyCommandError(err error) error {
	if err == nil || errdefs.IsInvalidArgument(err) || CommandExitCode(err.Error()) == 0 {
		return err
	}
	return fmt.Errorf("%w: check the command and that it is an executable file in the container: %w", err, errdefs.ErrInvalidArgument)
}

// shimGone tells that a call failed because containerd's connection to the
// task's shim closed: the task's deletion shut the shim down, or the shim
// died. Either way its process is gone or going, and containerd publishes
// the task's exit (for a dead shim, once it has cleaned up after it).
// containerd passes the shim's error on as an unknown-class status with
// ttrpc's message, so the message is what is left to match.
func shimGone(err error) bool {
	return errors.Is(err, ttrpc.ErrClosed) || strings.Contains(err.Error(), ttrpc.ErrClosed.Error())
}

// The exit codes and their reading live in package libcontainerd/types,
// which a client can import without the containerd client.

// Docker's exit codes for a command that cannot be run.
const (
	ExitCommandNotFound = types.ExitCommandNotFound
	ExitCommandNotRun   = types.ExitCommandNotRun
)

// CommandExitCode returns Docker's exit code for an error (or its message)
// that says the command cannot be run: ExitCommandNotFound or
// ExitCommandNotRun; 0 for any other error.
func CommandExitCode(msg string) int { return types.CommandExitCode(msg) }
