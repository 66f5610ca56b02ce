package initprobe

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestStatInRoot: InitPath is resolved as the container sees it, through an
// absolute symlink of the image (/sbin -> /usr/sbin) that would lead out of
// the container's root if the host resolved it.
func TestStatInRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "usr", "sbin"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, "usr", "sbin", filepath.Base(InitPath))
	if err := os.WriteFile(file, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/sbin", filepath.Join(root, "sbin")); err != nil {
		t.Fatal(err)
	}
	var in, want unix.Stat_t
	if err := statInRoot(root, InitPath, &in); err != nil {
		t.Fatalf("statInRoot(%s, %s): %v", root, InitPath, err)
	}
	if err := unix.Stat(file, &want); err != nil {
		t.Fatal(err)
	}
	if in.Dev != want.Dev || in.Ino != want.Ino {
		t.Errorf("statInRoot(%s, %s) found inode %d:%d, want %s (%d:%d)", root, InitPath, in.Dev, in.Ino, file, want.Dev, want.Ino)
	}
	if err := statInRoot(t.TempDir(), InitPath, &in); err == nil {
		t.Errorf("statInRoot of an empty root found %s", InitPath)
	}
}

// TestMounted: a process whose root has no such file at InitPath (this
// test's, on a host without /sbin/tend-init, or with another one), or no
// process at all, does not have init mounted.
func TestMounted(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tend-init")
	if err := os.WriteFile(file, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		pid  int
		init string
	}{
		{"other file", os.Getpid(), file},
		{"no pid", 0, file},
		{"no init", os.Getpid(), ""},
		{"missing init", os.Getpid(), file + ".missing"},
	} {
		if Mounted(tc.pid, tc.init) {
			t.Errorf("%s: Mounted(%d, %q) = true", tc.name, tc.pid, tc.init)
		}
	}
	// The same file, seen through this process's root.
	if _, err := os.Stat(InitPath); err == nil && !Mounted(os.Getpid(), InitPath) {
		t.Errorf("Mounted(self, %s) = false for the file at that very path", InitPath)
	}
}
