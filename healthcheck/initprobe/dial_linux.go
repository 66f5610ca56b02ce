package initprobe

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// maxSunPath is the longest path a sockaddr_un holds (108 bytes with its
// NUL).
const maxSunPath = 107

// dial connects to socketPath: directly when the path fits a sockaddr_un
// (the engine's default root, /var/lib/tend, gives 105 bytes), else
// through /proc/self/fd, which costs an open and a close of the directory
// on every probe.
func dial(ctx context.Context, socketPath string) (*net.UnixConn, error) {
	if len(socketPath) <= maxSunPath {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", socketPath)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("probe socket %s: %w: %w", socketPath, err, errdefs.ErrUnavailable)
		}
		return c.(*net.UnixConn), nil
	}
	dir, err := os.OpenFile(filepath.Dir(socketPath), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("probe socket %s: %w: %w", socketPath, err, errdefs.ErrUnavailable)
	}
	defer dir.Close()
	addr := "/proc/self/fd/" + strconv.Itoa(int(dir.Fd())) + "/" + filepath.Base(socketPath)
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("probe socket %s: %w: %w", socketPath, err, errdefs.ErrUnavailable)
	}
	return c.(*net.UnixConn), nil
}

// peerPid returns the pid that listens on the other end of conn.
func peerPid(conn *net.UnixConn) (int, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if credErr != nil {
		return 0, fmt.Errorf("read peer credentials: %w", credErr)
	}
	return int(cred.Pid), nil
}
