package libcontainerd

import (
	"errors"
	"fmt"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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

func TestShimGone(t *testing.T) {
	for _, tc := range []struct {
		err  error
		gone bool
	}{
		{ttrpc.ErrClosed, true},
		{fmt.Errorf("kill: %w", ttrpc.ErrClosed), true},
		// As the containerd client returns it: the shim's error travelled as a status.
		{status.Error(codes.Unknown, "ttrpc: closed"), true},
		{errgrpc.ToNative(status.Error(codes.Unknown, "ttrpc: closed")), true},
		{status.Error(codes.Unavailable, "connection error: desc = transport is closing"), false},
		{errdefs.ErrNotFound, false},
		{errors.New("permission denied"), false},
	} {
		if got := shimGone(tc.err); got != tc.gone {
			t.Errorf("shimGone(%v) = %v, want %v", tc.err, got, tc.gone)
		}
	}
}
