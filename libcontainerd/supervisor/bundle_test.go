package supervisor

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

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

// TestSweepStaleBundles: before containerd starts, the bundles it would never
// clean up go (a hidden one, one without the runc shim's "runtime" file);
// those it cleans up itself, another kind of entry, and one in use stay.
func TestSweepStaleBundles(t *testing.T) {
	state := t.TempDir()
	ns := filepath.Join(state, runtimeV2TaskDir, "ns")
	stale, hidden := filepath.Join(ns, "stale"), filepath.Join(ns, ".deleted")
	makeBundle(t, stale)
	makeBundle(t, hidden)
	created := filepath.Join(ns, "created") // containerd's to clean up: its exit is owed
	makeBundle(t, created)
	if err := os.WriteFile(filepath.Join(created, "runtime"), []byte("runc"), 0o600); err != nil {
		t.Fatal(err)
	}
	busy := filepath.Join(ns, "busy")
	makeBundle(t, busy)
	sock := filepath.Join(t.TempDir(), "shim.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.WriteFile(filepath.Join(busy, "address"), []byte("unix://"+sock), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(t.TempDir(), filepath.Join(ns, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ns, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	removed, err := sweepStaleBundles(state)
	if !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), busy) {
		t.Errorf("sweep error %v: want the bundle in use (%s) reported", err, busy)
	}
	sort.Strings(removed)
	if want := []string{hidden, stale}; !slices.Equal(removed, want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
	for _, gone := range []string{stale, hidden} {
		if _, err := os.Lstat(gone); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there: %v", gone, err)
		}
	}
	for _, kept := range []string{created, busy, filepath.Join(ns, "link"), filepath.Join(ns, "file")} {
		if _, err := os.Lstat(kept); err != nil {
			t.Errorf("%s removed: %v", kept, err)
		}
	}
	// No bundles at all: nothing to do.
	if removed, err := sweepStaleBundles(t.TempDir()); err != nil || len(removed) != 0 {
		t.Errorf("empty state dir: removed %v, %v", removed, err)
	}
}

func TestRemoveStaleTaskBundleWantsAbsoluteStateDir(t *testing.T) {
	if _, err := RemoveStaleTaskBundle("state", "ns", "web"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("relative state dir: %v, want ErrInvalidArgument", err)
	}
}

// TestRestartRemovesStaleBundles: the hidden bundle a containerd killed
// inside a task delete left (containerd itself never looks at it again) is
// gone once the Daemon has started containerd again, and
// RemoveStaleTaskBundle removes one found while containerd runs.
func TestRestartRemovesStaleBundles(t *testing.T) {
	requireContainerd(t)
	ctx := context.Background()
	d, err := Start(ctx, Config{Root: shortRoot(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop(ctx)
	bundle := filepath.Join(d.StateDir(), runtimeV2TaskDir, "tend-sup-test", "web")
	hidden := filepath.Join(filepath.Dir(bundle), ".web")
	makeBundle(t, hidden)
	if err := d.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := d.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(hidden); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale hidden bundle survived the restart: %v", err)
	}

	makeBundle(t, bundle)
	removed, err := d.RemoveStaleTaskBundle("tend-sup-test", "web")
	if err != nil || !slices.Equal(removed, []string{bundle}) {
		t.Fatalf("RemoveStaleTaskBundle: removed %v, %v; want %s", removed, err, bundle)
	}
	serving(t, d.Address())
}
