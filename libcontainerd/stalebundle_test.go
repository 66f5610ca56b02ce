package libcontainerd

import (
	"errors"
	"testing"
)

func TestStaleBundle(t *testing.T) {
	const dir = "/run/ctd/state/io.containerd.runtime.v2.task/ns/web"
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("failed to start shim: mkdir " + dir + ": file exists: unknown"), dir},
		{errors.New("rpc error: code = Unknown desc = failed to start shim: mkdir " + dir + ": file exists"), dir},
		// Another container's or namespace's bundle, or another error.
		{errors.New("failed to start shim: mkdir /s/io.containerd.runtime.v2.task/ns/web2: file exists"), ""},
		{errors.New("failed to start shim: mkdir /s/io.containerd.runtime.v2.task/ns2/web: file exists"), ""},
		{errors.New("failed to start shim: mkdir " + dir + ": permission denied"), ""},
		{errors.New("open " + dir + "/config.json: file exists"), ""},
	} {
		if got := staleBundle(tc.err, "ns", "web"); got != tc.want {
			t.Errorf("staleBundle(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
