package libcontainerd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/identifiers"
	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/io/fifoset"
)

// runtimeV2TaskDir is where under its state dir containerd's v2 runtime
// keeps task bundles: <state>/io.containerd.runtime.v2.task/<ns>/<id>.
//
// containerd 1.6 can leave a bundle behind without its task. Killed after
// making the bundle of a new task and before the shim created the task, it
// finds at restart a bundle whose shim is gone and runs the shim's delete
// command, which fails because the bundle has no "runtime" file yet (the
// shim writes it on create; containerd 2 tolerates its absence); the bundle
// is removed only after that command succeeds. Killed inside a bundle
// delete, it leaves the hidden ".<id>" it renames the bundle to; the next
// delete's rename then fails and leaves <id>. containerd never looks at
// such a dir again, and every NewTask of the container fails with "failed
// to start shim: mkdir <bundle>: file exists".
const runtimeV2TaskDir = "io.containerd.runtime.v2.task"

// shimDialTimeout bounds the check whether a shim still serves a bundle.
const shimDialTimeout = time.Second

// staleBundle returns the bundle dir of task id in namespace ns that err,
// from NewTask, says exists already ("mkdir <dir>: file exists"), or "".
func staleBundle(err error, ns, id string) string {
	if err == nil {
		return ""
	}
	const exists = ": file exists"
	msg := err.Error()
	end := strings.Index(msg, "/"+runtimeV2TaskDir+"/"+ns+"/"+id+exists)
	if end < 0 {
		return ""
	}
	end += len("/" + runtimeV2TaskDir + "/" + ns + "/" + id)
	start := strings.LastIndex(msg[:end], "mkdir ")
	if start < 0 {
		return ""
	}
	return msg[start+len("mkdir ") : end]
}

// removeStaleBundle removes dir, the bundle of a task that containerd does
// not know, which stands in the way of every new task of the container; see
// runtimeV2TaskDir.
func (c *client) removeStaleBundle(ctx context.Context, ct *container, id, dir string) error {
	if c.stateDir == "" {
		return fmt.Errorf("containerd left the task bundle %s behind without its task (it was killed while creating or deleting one) and cannot start a task for %s until it is gone: "+
			"check that no containerd-shim has it as working directory, unmount %s, remove the dir and start again; "+
			"or give the client containerd's state dir (WithContainerdStateDir) to have this done itself: %w",
			dir, id, filepath.Join(dir, "rootfs"), errdefs.ErrFailedPrecondition)
	}
	if want := filepath.Join(c.stateDir, runtimeV2TaskDir, c.ns, id); dir != want {
		return fmt.Errorf("containerd cannot make the task bundle %s because it exists, but that is not %s: is %s containerd's state dir? Remove the stale bundle by hand (unmount its rootfs first): %w",
			dir, want, c.stateDir, errdefs.ErrFailedPrecondition)
	}
	switch _, err := ct.ctr.Task(ctx, nil); {
	case err == nil:
		return fmt.Errorf("task bundle %s exists and containerd has a task for %s: Restore or DeleteTask it: %w", dir, id, errdefs.ErrFailedPrecondition)
	case !errdefs.IsNotFound(err):
		return fmt.Errorf("task bundle %s exists; ask containerd for the task of %s: %w", dir, id, err)
	}
	removed, err := removeBundle(c.stateDir, c.ns, id)
	if err != nil {
		return err
	}
	c.log.WithField("container", id).WithField("removed", removed).
		Warn("removed a task bundle containerd had left behind without its task (it was killed while creating or deleting the task): no process used it, and it kept every new task from starting")
	return nil
}

// removeBundle removes the bundle dir of task id in namespace ns under
// containerd's state dir, and the hidden ".<id>" an interrupted delete left,
// unless something still uses them (bundleUser). Each rootfs is unmounted,
// with every mount under it, and must then be an empty dir: nothing of a
// snapshot is ever removed. It returns the dirs it removed.
func removeBundle(state, ns, id string) ([]string, error) {
	if err := identifiers.Validate(ns); err != nil {
		return nil, err
	}
	if err := fifoset.ValidateID(id); err != nil {
		return nil, err
	}
	parent := filepath.Join(state, runtimeV2TaskDir, ns)
	var removed []string
	for _, dir := range []string{filepath.Join(parent, id), filepath.Join(parent, "."+id)} {
		if err := realDir(dir); errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return removed, err
		}
		if user := bundleUser(dir); user != "" {
			return removed, fmt.Errorf("task bundle %s is stale but still in use (%s): stop that first: %w", dir, user, errdefs.ErrFailedPrecondition)
		}
		rootfs := filepath.Join(dir, "rootfs")
		if err := realDir(rootfs); err == nil {
			if err := mount.UnmountRecursive(rootfs, 0); err != nil {
				return removed, fmt.Errorf("unmount %s of stale task bundle: %w", rootfs, err)
			}
			if err := os.Remove(rootfs); err != nil {
				return removed, fmt.Errorf("stale task bundle %s: its rootfs is not an empty dir once unmounted (%v): remove the bundle by hand: %w", dir, err, errdefs.ErrFailedPrecondition)
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return removed, err
		}
		if err := os.RemoveAll(dir); err != nil {
			return removed, fmt.Errorf("remove stale task bundle: %w", err)
		}
		removed = append(removed, dir)
	}
	return removed, nil
}

// realDir checks that path is a directory and not a symlink, which could
// lead the unmount and the removal elsewhere.
func realDir(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory (%v): remove it by hand: %w", path, fi.Mode().Type(), errdefs.ErrFailedPrecondition)
	}
	return nil
}

// bundleUser says what still uses a bundle dir, or "" when nothing does: a
// shim that answers on the bundle's address, or a process whose working
// directory is in it (shims and their start and delete commands run there).
func bundleUser(dir string) string {
	if b, err := os.ReadFile(filepath.Join(dir, "address")); err == nil {
		addr := strings.TrimSpace(string(b))
		path, ok := strings.CutPrefix(addr, "unix://")
		if !ok && strings.Contains(addr, "://") {
			return fmt.Sprintf("shim address %q, which cannot be checked", addr)
		}
		if conn, err := net.DialTimeout("unix", path, shimDialTimeout); err == nil {
			conn.Close()
			return "a shim answers on " + addr
		}
	}
	// /proc shows working directories with symlinks resolved.
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return "cannot read /proc to check for shims: " + err.Error()
	}
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", p.Name(), "cwd"))
		if err != nil {
			continue // gone, or a kernel thread
		}
		cwd = strings.TrimSuffix(cwd, " (deleted)")
		if cwd == dir || strings.HasPrefix(cwd, dir+"/") {
			return "process " + p.Name() + " works in it"
		}
	}
	return ""
}
