package initprobe

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// Mounted reports whether the file at InitPath in the root of host process
// pid is the host file init (the same inode): whether the container of pid
// has this tend-init bind-mounted, so that SubreaperArgv runs it. A
// container created before the mount existed, or one that still mounts a
// tend-init since replaced on the host, has another file or none there.
// InitPath is resolved inside the container's root, its symlinks included
// (an image's /sbin may be an absolute link into /usr).
func Mounted(pid int, init string) bool {
	if pid <= 0 || init == "" {
		return false
	}
	own, err := os.Stat(init)
	if err != nil {
		return false
	}
	st, ok := own.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	root := "/proc/" + strconv.Itoa(pid) + "/root"
	var in unix.Stat_t
	if err := statInRoot(root, InitPath, &in); err != nil {
		return false
	}
	return uint64(in.Dev) == uint64(st.Dev) && in.Ino == st.Ino
}

// statInRoot stats path as a process whose root is root sees it.
func statInRoot(root, path string, st *unix.Stat_t) error {
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	fd, err := unix.Openat2(dir, path, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.ENOSYS) {
		// Before Linux 5.6: an absolute symlink on the way would resolve
		// on the host and miss, which only costs the guard.
		return unix.Stat(filepath.Join(root, path), st)
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fstat(fd, st)
}
