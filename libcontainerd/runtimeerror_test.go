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
	}{
		{`failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "nope": executable file not found in $PATH: unknown`, true},
		{`OCI runtime create failed: runc create failed: unable to start container process: exec: "/bin/nope": stat /bin/nope: no such file or directory: unknown`, true},
		{`OCI runtime create failed: runc create failed: unable to start container process: exec: "/etc/passwd": permission denied: unknown`, true},
		{`OCI runtime exec failed: exec failed: unable to start container process: exec /etc: is a directory: unknown`, true},
		{`unable to start container process: exec format error: unknown`, true},
		{`failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: error mounting "proc": no such file or directory: unknown`, false},
		{`failed to create shim task: context deadline exceeded`, false},
		{`open /run/containerd/fifo: permission denied`, false},
	} {
		in := errors.Join(errors.New(tc.msg), errdefs.ErrUnknown)
		got := classifyCommandError(in)
		if errdefs.IsInvalidArgument(got) != tc.invalid || !errors.Is(got, in) {
			t.Errorf("%s: %v, want invalid argument %v, wrapping the runtime's error", tc.msg, got, tc.invalid)
		}
	}
	if classifyCommandError(nil) != nil {
		t.Error("nil became an error")
	}
}
