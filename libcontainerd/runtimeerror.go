package libcontainerd

import (
	"fmt"
	"regexp"

	"github.com/containerd/errdefs"
)

// Docker's exit codes for a command that cannot be run.
const (
	ExitCommandNotFound = 127 // the command does not exist
	ExitCommandNotRun   = 126 // it exists but cannot be run
)

// commandNotFound and commandNotRun match what runc says when the
// container's command cannot be run: `exec: "nope": executable file not
// found in $PATH`, `exec: "/bin/nope": stat /bin/nope: no such file or
// directory`; `exec: "/etc/passwd": permission denied`, `exec /etc: is a
// directory`, `exec format error`. The runtime's error reaches containerd's
// client as gRPC Unknown with this text and no type; this is the one place
// that reads it, as moby's translateContainerdStartErr does.
var (
	commandNotFound = regexp.MustCompile(`(?i)\bexec:? [^:]*: (executable file not found|(stat [^:]*: )?no such file or directory)`)
	commandNotRun   = regexp.MustCompile(`(?i)\bexec:? [^:]*: (permission denied|is a directory)|exec format error`)
)

// CommandExitCode returns Docker's exit code for an error (or its message)
// that says the command cannot be run: ExitCommandNotFound or
// ExitCommandNotRun; 0 for any other error.
func CommandExitCode(msg string) int {
	switch {
	case commandNotFound.MatchString(msg):
		return ExitCommandNotFound
	case commandNotRun.MatchString(msg):
		return ExitCommandNotRun
	}
	return 0
}

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
