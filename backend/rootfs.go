package backend

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/errdefs"
)

// A container's root filesystem, for what docker reads and writes there
// (diff, export, cp, sizes): a running container's is seen through its
// init's /proc/PID/root, which shows what the container's processes see;
// a stopped one's is its containerd snapshot, mounted for the call (read
// only unless the call writes); a --rootfs container's is its directory.

// rootfsTarget is what rootfsOf found for a container.
type rootfsTarget struct {
	id, rootfs string
	pid        uint32
	active     bool
}

func (e *Engine) rootfsOf(ref string) (*container, rootfsTarget, error) {
	c, err := e.resolve(ref)
	if err != nil {
		return nil, rootfsTarget{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed {
		return nil, rootfsTarget{}, fmt.Errorf("No such container: %s: %w", ref, errdefs.ErrNotFound)
	}
	return c, rootfsTarget{id: c.rec.ID, rootfs: c.rec.Config.Rootfs, pid: c.rec.Pid, active: isActive(c.rec.State) && c.rec.Pid > 0}, nil
}

// snapshot returns the snapshotter and key of an image-based container.
func (e *Engine) snapshot(ctx context.Context, id string) (snapshots.Snapshotter, string, error) {
	cc := e.imageClient()
	ctr, err := cc.LoadContainer(ctx, id)
	if err != nil {
		return nil, "", fmt.Errorf("container %s in containerd: %w", shortID(id), err)
	}
	info, err := ctr.Info(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("container %s in containerd: %w", shortID(id), err)
	}
	if info.SnapshotKey == "" {
		return nil, "", fmt.Errorf("container %s has no snapshot: %w", shortID(id), errdefs.ErrNotFound)
	}
	name := info.Snapshotter
	if name == "" {
		name = snapshotter
	}
	return cc.SnapshotService(name), info.SnapshotKey, nil
}

// withRootfs calls fn with the root of the container's filesystem. live
// (a running container) roots are its init's view; otherwise the snapshot
// is mounted, read-only unless write.
func (e *Engine) withRootfs(ctx context.Context, t rootfsTarget, write bool, fn func(root string, live bool) error) error {
	ctx = e.nsCtx(ctx)
	if t.active {
		root := "/proc/" + strconv.FormatUint(uint64(t.pid), 10) + "/root"
		if _, err := os.Stat(root); err == nil {
			return fn(root, true)
		}
		// It exited meanwhile: its snapshot is there.
	}
	if t.rootfs != "" {
		return fn(t.rootfs, false)
	}
	sn, key, err := e.snapshot(ctx, t.id)
	if err != nil {
		return err
	}
	mounts, err := sn.Mounts(ctx, key)
	if err != nil {
		return fmt.Errorf("mounts of %s: %w", shortID(t.id), err)
	}
	if write {
		return mount.WithTempMount(ctx, mounts, func(root string) error { return fn(root, false) })
	}
	return mount.WithReadonlyTempMount(ctx, mounts, func(root string) error { return fn(root, false) })
}

// withLayers calls fn with the container's image (its snapshot's parent,
// mounted read-only) and its own filesystem as seen without the
// container's mounts (the snapshot, read-only), for diff.
func (e *Engine) withLayers(ctx context.Context, t rootfsTarget, fn func(lower, upper string) error) (retErr error) {
	ctx = e.nsCtx(ctx)
	if t.rootfs != "" {
		return fmt.Errorf("container %s runs from the directory %s, not an image: it has no layers to compare: %w", shortID(t.id), t.rootfs, errdefs.ErrFailedPrecondition)
	}
	sn, key, err := e.snapshot(ctx, t.id)
	if err != nil {
		return err
	}
	info, err := sn.Stat(ctx, key)
	if err != nil {
		return fmt.Errorf("snapshot of %s: %w", shortID(t.id), err)
	}
	upper, err := sn.Mounts(ctx, key)
	if err != nil {
		return fmt.Errorf("mounts of %s: %w", shortID(t.id), err)
	}
	if info.Parent == "" {
		empty, err := os.MkdirTemp("", "tend-empty-")
		if err != nil {
			return err
		}
		defer os.Remove(empty)
		return mount.WithReadonlyTempMount(ctx, upper, func(u string) error { return fn(empty, u) })
	}
	viewKey := "tend-view-" + newID()[:24]
	lower, err := sn.View(ctx, viewKey, info.Parent)
	if err != nil {
		return fmt.Errorf("view of the image of %s: %w", shortID(t.id), err)
	}
	defer func() {
		if err := sn.Remove(context.WithoutCancel(ctx), viewKey); err != nil && retErr == nil {
			e.log.WithError(err).WithField("container", t.id).Warn("remove diff view")
		}
	}()
	return mount.WithReadonlyTempMount(ctx, lower, func(l string) error {
		return mount.WithReadonlyTempMount(ctx, upper, func(u string) error { return fn(l, u) })
	})
}

// Size measures the disk use of a container from its snapshots (zero for
// a --rootfs container: its directory is not the engine's).
func (e *Engine) Size(ctx context.Context, ref string) (Usage, error) {
	_, t, err := e.rootfsOf(ref)
	if err != nil {
		return Usage{}, err
	}
	if t.rootfs != "" {
		return Usage{}, nil
	}
	ctx = e.nsCtx(ctx)
	sn, key, err := e.snapshot(ctx, t.id)
	if err != nil {
		return Usage{}, err
	}
	var u Usage
	for k, first := key, true; k != ""; first = false {
		usage, err := sn.Usage(ctx, k)
		if err != nil {
			return u, fmt.Errorf("disk use of %s: %w", shortID(t.id), err)
		}
		if first {
			u.SizeRw = usage.Size
		}
		u.SizeRootFs += usage.Size
		info, err := sn.Stat(ctx, k)
		if err != nil {
			return u, fmt.Errorf("disk use of %s: %w", shortID(t.id), err)
		}
		k = info.Parent
	}
	return u, nil
}
