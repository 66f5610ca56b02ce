package libcontainerd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

// TestPrivateDir: the FIFO dir is made 0700, and one that exists but could
// give someone else the containers' stdio is refused with a clear error.
func TestPrivateDir(t *testing.T) {
	for _, tc := range []struct {
		name string
		// prepare makes what lies at dir beforehand.
		prepare func(t *testing.T, dir string)
		want    string // in the error; "" for success
	}{
		{"fresh, with missing parents", func(t *testing.T, dir string) {}, ""},
		{"exists, private", func(t *testing.T, dir string) { mkdir(t, dir, 0o700) }, ""},
		{"symlink to a private dir", func(t *testing.T, dir string) {
			target := filepath.Join(t.TempDir(), "target")
			mkdir(t, target, 0o700)
			mkdir(t, filepath.Dir(dir), 0o700)
			if err := os.Symlink(target, dir); err != nil {
				t.Fatal(err)
			}
		}, "is a symlink"},
		{"open to others", func(t *testing.T, dir string) {
			mkdir(t, dir, 0o700)
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}, "has mode 0755"},
		{"a file", func(t *testing.T, dir string) {
			mkdir(t, filepath.Dir(dir), 0o700)
			if err := os.WriteFile(dir, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "is not a directory"},
		{"someone else's", func(t *testing.T, dir string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give a dir away")
			}
			mkdir(t, dir, 0o700)
			if err := os.Chown(dir, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, "owned by someone else"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "a", "fifo")
			tc.prepare(t, dir)
			err := privateDir(dir)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("privateDir: %v", err)
				}
				fi, err := os.Lstat(dir)
				if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
					t.Fatalf("dir %v, %v: want a 0700 dir", fi, err)
				}
				return
			}
			if !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("privateDir: %v, want a failed precondition naming %s and saying %q", err, dir, tc.want)
			}
		})
	}
	if err := privateDir("fifo"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("relative dir: %v, want ErrInvalidArgument", err)
	}
}

// TestNewRefusesUnsafeFIFODir: New checks the FIFO dir before it connects.
func TestNewRefusesUnsafeFIFODir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fifo")
	mkdir(t, dir, 0o700)
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	b := BackendFunc(func(context.Context, string, EventType, EventInfo) error { return nil })
	c, err := New(context.Background(), "unix:///nonexistent.sock", "tend-fifo-test", b, WithFIFODir(dir))
	if err == nil {
		c.Close()
		t.Fatal("New accepted a FIFO dir open to everyone")
	}
	if !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("New: %v, want a failed precondition", err)
	}
}

func mkdir(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(dir, mode); err != nil {
		t.Fatal(err)
	}
}
