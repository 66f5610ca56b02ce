package cli

import (
	"errors"
	"fmt"
	"testing"

	"github.com/containerd/errdefs"
)

func TestExecErrorCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		// docker exec -u with a user the container does not know: 126.
		{fmt.Errorf(`user "nosuchuser": no such user or group in the image's /etc/passwd or /etc/group: give one it has, or a numeric uid[:gid]: %w`, errdefs.ErrInvalidArgument), 126},
		{fmt.Errorf(`user "bob": the image has no /etc/passwd or /etc/group to look the name up in: give a numeric uid[:gid]: %w`, errdefs.ErrInvalidArgument), 126},
		{fmt.Errorf(`user "a:b:c": invalid USER value a:b:c: want name, uid, uid:gid or name:group: %w`, errdefs.ErrInvalidArgument), 126},
		{fmt.Errorf(`exec: "nope": executable file not found in $PATH: %w`, errdefs.ErrUnknown), 126},
		{fmt.Errorf(`container c is not running: %w`, errdefs.ErrFailedPrecondition), 1},
		{fmt.Errorf(`No such container: c: %w`, errdefs.ErrNotFound), 1},
		// Other invalid arguments stay the engine's refusal.
		{fmt.Errorf(`working directory "rel" must be absolute: %w`, errdefs.ErrInvalidArgument), 125},
		{errors.New("cannot connect to the engine"), 125},
	} {
		var se *StatusError
		if !errors.As(execError(tc.err), &se) || se.Code != tc.want {
			t.Errorf("execError(%q) = %v, want code %d", tc.err, execError(tc.err), tc.want)
		}
	}
}
