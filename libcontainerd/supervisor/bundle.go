package supervisor

import (
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
	"github.com/containerd/log"
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
// to start shim: mkdir <bundle>: file exists". The supervisor, which owns
// the state dir, removes such dirs before it starts containerd
// (sweepStaleBundles) and on request (RemoveStaleTaskBundle).
const runtimeV2TaskDir = "io.containerd.runtime.v2.task"

// shimDialTimeout bounds the check whether a shim still serves a bundle.
const shimDialTimeout = time.Second

// RemoveStaleTaskBundle removes the bundle dir of task id in namespace ns
// under stateDir, the state dir (--state) of a containerd the caller owns,
// and the hidden ".<id>" an interrupted delete left; see runtimeV2TaskDir.
// Call it when a task start fails with libcontainerd.StaleBundleError. It
// refuses a bundle that a shim or any process still uses
// (ErrFailedPrecondition), unmounts each rootfs, which must then be an empty
// dir (nothing of a snapshot is ever removed), and returns the dirs it
// removed.
func RemoveStaleTaskBundle(stateDir, ns, id string) ([]string, error) {
	if !filepath.IsAbs(stateDir) {
		return nil, fmt.Errorf("supervisor: containerd state dir %q: want an absolute path: %w", stateDir, errdefs.ErrInvalidArgument)
	}
	removed, err := removeBundle(stateDir, ns, id)
	if len(removed) > 0 {
		log.L.WithField("namespace", ns).WithField("container", id).WithField("removed", removed).
			Warn("supervisor: removed a task bundle containerd had left behind without its task (it was killed while creating or deleting the task): no process used it, and it kept every new task from starting")
	}
	return removed, err
}

// RemoveStaleTaskBundle is the package function for the containerd d runs.
func (d *Daemon) RemoveStaleTaskBundle(ns, id string) ([]string, error) {
	return RemoveStaleTaskBundle(d.StateDir(), ns, id)
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
	if err := identifiers.Validate(id); err != nil {
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
		if err := removeBundleDir(dir); err != nil {
			return removed, err
		}
		removed = append(removed, dir)
	}
	return removed, nil
}

// removeBundleDir removes one stale bundle dir, a real dir, unless
// something uses it; its rootfs is unmounted and must then be empty.
func removeBundleDir(dir string) error {
	if user := bundleUser(dir); user != "" {
		return fmt.Errorf("task bundle %s is stale but still in use (%s): stop that first: %w", dir, user, errdefs.ErrFailedPrecondition)
	}
	rootfs := filepath.Join(dir, "rootfs")
	if err := realDir(rootfs); err == nil {
		if err := mount.UnmountRecursive(rootfs, 0); err != nil {
			return fmt.Errorf("unmount %s of stale task bundle: %w", rootfs, err)
		}
		if err := os.Remove(rootfs); err != nil {
			return fmt.Errorf("stale task bundle %s: its rootfs is not an empty dir once unmounted (%v): remove the bundle by hand: %w", dir, err, errdefs.ErrFailedPrecondition)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove stale task bundle: %w", err)
	}
	return nil
}

// sweepStaleBundles removes, before containerd starts on state, the bundle
// dirs it would never clean up itself and that would fail every later task
// of their container: a hidden ".<id>" an interrupted delete left (containerd
// skips hidden dirs), and a bundle without the "runtime" file that the runc
// shim writes when it creates the task (no task was ever created in it, so
// no exit is owed; containerd 1.6 fails to delete it). Every other bundle is
// containerd's to load or clean up, which reports the exits of its tasks.
// Dirs something still uses are kept. It returns what it removed and what
// it could not.
func sweepStaleBundles(state string) (removed []string, errs error) {
	root := filepath.Join(state, runtimeV2TaskDir)
	nss, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("read task bundles: %w", err)
	}
	for _, ns := range nss {
		if !ns.IsDir() || identifiers.Validate(ns.Name()) != nil {
			continue
		}
		bundles, err := os.ReadDir(filepath.Join(root, ns.Name()))
		if err != nil {
			errs = errors.Join(errs, err)
			continue
		}
		for _, b := range bundles {
			dir := filepath.Join(root, ns.Name(), b.Name())
			hidden := strings.HasPrefix(b.Name(), ".")
			if identifiers.Validate(strings.TrimPrefix(b.Name(), ".")) != nil || realDir(dir) != nil {
				continue
			}
			if _, err := os.Lstat(filepath.Join(dir, "runtime")); !hidden && !errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err := removeBundleDir(dir); err != nil {
				errs = errors.Join(errs, err)
				continue
			}
			removed = append(removed, dir)
		}
	}
	return removed, errs
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
