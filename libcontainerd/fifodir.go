package libcontainerd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/containerd/errdefs"
)

// privateDir makes dir (and its missing parents) with mode 0700 and checks
// that it is a directory of the effective user that nobody else can enter.
// A dir someone else made in a shared place such as /tmp, or a symlink
// there, would give them the containers' stdio.
func privateDir(dir string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("%q: want an absolute path: %w", dir, errdefs.ErrInvalidArgument)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return fmt.Errorf("create the parent of %s: %w", dir, err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("check %s: %w", dir, err)
	}
	unsafe := func(what string) error {
		return fmt.Errorf("%s %s: the FIFO dir must be a directory of uid %d with mode 0700; remove it or pick another dir (WithFIFODir): %w",
			dir, what, os.Geteuid(), errdefs.ErrFailedPrecondition)
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return unsafe("is a symlink")
	}
	if !fi.IsDir() {
		return unsafe("is not a directory")
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Geteuid() {
		return unsafe("is owned by someone else")
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		return unsafe(fmt.Sprintf("has mode %#o", perm))
	}
	return nil
}
