package libcontainerd

import (
	"errors"
	"testing"

	"github.com/containerd/errdefs"
)

func TestClassifyCommandError(t *testing.T) {
	for _, tc := range []struct {
		msg     string
		invalid bool
		code    int
	}{
		{`failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "nope": executable file not found in $PATH: unknown`, true, 127},
		{`OCI runtime create failed: runc create failed: unable to start container process: exec: "/bin/nope": stat /bin/nope: no such file or directory: unknown`, true, 127},
		{`OCI runtime create failed: runc create failed: unable to start container process: exec: "/etc/passwd": permission denied: unknown`, true, 126},
		{`OCI runtime exec failed: exec failed: unable to start container process: exec /etc: is a directory: unknown`, true, 126},
		{`unable to start container process: exec format error: unknown`, true, 126},
		{`failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: error mounting "proc": no such file or directory: unknown`, false, 0},
		{`failed to create shim task: context deadline exceeded`, false, 0},
		{`open /run/containerd/fifo: permission denied`, false, 0},
	} {
		in := errors.Join(errors.New(tc.msg), errdefs.ErrUnknown)
		got := classifyCommandError(in)
		if errdefs.IsInvalidArgument(got) != tc.invalid || !errors.Is(got, in) {
			t.Errorf("%s: %v, want invalid argument %v, wrapping the runtime's error", tc.msg, got, tc.invalid)
		}
		if got := CommandExitCode(tc.msg); got != tc.code {
			t.Errorf("CommandExitCode(%s) = %d, want %d", tc.msg, got, tc.code)
		}
	}
	if classifyCommandError(nil) != nil {
		t.Error("nil became an error")
	}
}
