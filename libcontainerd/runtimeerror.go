package libcontainerd

import (
	"fmt"
	"regexp"

	"github.com/containerd/errdefs"
)

// commandError matches what runc says when the container's command cannot
// be run: `exec: "nope": executable file not found in $PATH`,
// `exec: "/bin/nope": stat /bin/nope: no such file or directory`,
// `exec: "/etc/passwd": permission denied`, `exec /etc: is a directory`,
// `exec format error`. The runtime's error reaches containerd's client as
// gRPC Unknown with this text and no type; this is the one place that reads
// it, as moby's translateContainerdStartErr does.
var commandError = regexp.MustCompile(`(?i)\bexec:? [^:]*: (executable file not found|(stat [^:]*: )?no such file or directory|permission denied|is a directory)|exec format error`)

// classifyCommandError marks as errdefs.ErrInvalidArgument a start or exec
// error that says the command does not exist or cannot be run: the
// caller's to fix, not a failure of containerd. Any other error is returned
// as is.
func classifyCommandError(err error) error {
	if err == nil || errdefs.IsInvalidArgument(err) || !commandError.MatchString(err.Error()) {
		return err
	}
	return fmt.Errorf("%w: check the command and that it is an executable file in the container: %w", err, errdefs.ErrInvalidArgument)
}
