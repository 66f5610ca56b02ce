package libcontainerd

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/containerd/errdefs"
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

// makeBundle makes a bundle dir as containerd 1.6 leaves it after a crash
// during NewTask: an empty rootfs, the work link, a config and the address
// of a shim that is gone.
func makeBundle(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "rootfs"), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(t.TempDir(), filepath.Join(dir, "work")); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		"config.json": "{}",
		"address":     "unix://" + filepath.Join(t.TempDir(), "gone.sock"),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRemoveBundle(t *testing.T) {
	for _, tc := range []struct {
		name string
		// prepare changes the stale bundle dir and returns what removeBundle
		// must then fail with (nil: it removes the dir).
		prepare func(t *testing.T, dir string) error
	}{
		{"stale", func(t *testing.T, dir string) error { return nil }},
		{"interrupted delete left the hidden dir too", func(t *testing.T, dir string) error {
			makeBundle(t, filepath.Join(filepath.Dir(dir), ".web"))
			return nil
		}},
		{"no rootfs", func(t *testing.T, dir string) error {
			return os.Remove(filepath.Join(dir, "rootfs"))
		}},
		{"a shim answers", func(t *testing.T, dir string) error {
			sock := filepath.Join(t.TempDir(), "shim.sock")
			l, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			if err := os.WriteFile(filepath.Join(dir, "address"), []byte("unix://"+sock), 0o600); err != nil {
				t.Fatal(err)
			}
			return errdefs.ErrFailedPrecondition
		}},
		{"a process works in it", func(t *testing.T, dir string) error {
			cmd := exec.Command("sleep", "1000")
			cmd.Dir = dir
			if err := cmd.Start(); err != nil {
				t.Skipf("cannot run sleep: %v", err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			return errdefs.ErrFailedPrecondition
		}},
		{"rootfs not empty (still mounted)", func(t *testing.T, dir string) error {
			if err := os.WriteFile(filepath.Join(dir, "rootfs", "data"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return errdefs.ErrFailedPrecondition
		}},
		{"rootfs is a symlink", func(t *testing.T, dir string) error {
			rootfs := filepath.Join(dir, "rootfs")
			if err := os.Remove(rootfs); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("/", rootfs); err != nil {
				t.Fatal(err)
			}
			return errdefs.ErrFailedPrecondition
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := t.TempDir()
			dir := filepath.Join(state, runtimeV2TaskDir, "ns", "web")
			makeBundle(t, dir)
			other := filepath.Join(state, runtimeV2TaskDir, "ns", "web2")
			makeBundle(t, other)
			wantErr := tc.prepare(t, dir)

			removed, err := removeBundle(state, "ns", "web")
			if _, serr := os.Lstat(other); serr != nil {
				t.Fatalf("another container's bundle was touched: %v", serr)
			}
			if wantErr != nil {
				if !errors.Is(err, wantErr) {
					t.Fatalf("removeBundle: %v, want %v", err, wantErr)
				}
				if _, serr := os.Lstat(dir); serr != nil || len(removed) != 0 {
					t.Fatalf("removed %v after an error (%v): want the bundle kept", removed, serr)
				}
				return
			}
			if err != nil {
				t.Fatalf("removeBundle: %v", err)
			}
			for _, d := range []string{dir, filepath.Join(filepath.Dir(dir), ".web")} {
				if _, err := os.Lstat(d); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s still there: %v", d, err)
				}
			}
			if len(removed) == 0 || removed[0] != dir {
				t.Errorf("removed %v, want %s first", removed, dir)
			}
		})
	}
}

func TestRemoveBundleRefusesBadNames(t *testing.T) {
	state := t.TempDir()
	for _, ns := range []string{"", "..", "a/b"} {
		if _, err := removeBundle(state, ns, "web"); !errdefs.IsInvalidArgument(err) {
			t.Errorf("namespace %q: %v, want ErrInvalidArgument", ns, err)
		}
	}
	for _, id := range []string{"", "..", "../web", "a/b", ".web"} {
		if _, err := removeBundle(state, "ns", id); !errdefs.IsInvalidArgument(err) {
			t.Errorf("id %q: %v, want ErrInvalidArgument", id, err)
		}
	}
	// Nothing there: nothing to do.
	if removed, err := removeBundle(state, "ns", "web"); err != nil || len(removed) != 0 {
		t.Errorf("no bundle: removed %v, %v", removed, err)
	}
}
