package types

import (
	"regexp"
	"sync"
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
// They are compiled on first use: a client that never reads a start
// error does not pay for them at start-up.
var (
	commandNotFound = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?i)\bexec:? [^:]*: (executable file not found|(stat [^:]*: )?no such file or directory)`)
	})
	commandNotRun = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?i)\bexec:? [^:]*: (permission denied|is a directory)|exec format error`)
	})
)

// CommandExitCode returns Docker's exit code for an error (or its message)
// that says the command cannot be run: ExitCommandNotFound or
// ExitCommandNotRun; 0 for any other error.
func CommandExitCode(msg string) int {
	switch {
	case commandNotFound().MatchString(msg):
		return ExitCommandNotFound
	case commandNotRun().MatchString(msg):
		return ExitCommandNotRun
	}
	return 0
}
