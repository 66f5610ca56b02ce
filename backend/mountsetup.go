package backend

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/continuity/fs"
	"github.com/containerd/errdefs"
	mounttypes "github.com/moby/moby/api/types/mount"
	"github.com/opencontainers/image-spec/identity"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// plannedMount is one mount of a container being created.
type plannedMount struct {
	m      Mount
	mode   string // the -v options as given
	source string // bind: the host path with symlinks resolved
	volume string // volume: its name once acquired
	copyUp bool   // volume: fill it from the image when empty
}

// setupMounts turns o's -v and --mount values, and the image's VOLUMEs,
// into mounts of spec and the container's MountPoints. It checks all
// input before it creates anything: a bind source must exist and must not
// be the host's root or the engine's state (unless privileged). Volumes
// are created on first use and filled from the image's content at their
// destination when empty (docker's copy-up). undo releases the volumes
// and removes those it created; the caller runs it when the create fails
// later.
func (e *Engine) setupMounts(ctx context.Context, id string, o *CreateOptions, spec *specs.Spec) (_ []MountPoint, undo func(), retErr error) {
	var plan []plannedMount
	for _, raw := range o.Binds {
		m, mode, err := ParseVolumeSpec(raw)
		if err != nil {
			return nil, nil, err
		}
		plan = append(plan, plannedMount{m: m, mode: mode})
	}
	for _, m := range o.Mounts {
		if err := ValidateMount(&m); err != nil {
			return nil, nil, err
		}
		plan = append(plan, plannedMount{m: m})
	}
	for i := range plan {
		p := &plan[i]
		p.m.Target = path.Clean(p.m.Target)
		if p.m.Type != mounttypes.TypeBind {
			continue
		}
		src, err := e.checkBindSource(p.m.Source, o.Privileged)
		if err != nil {
			return nil, nil, err
		}
		p.source = src
	}
	imgVolumes, err := e.imageVolumes(ctx, o)
	if err != nil {
		return nil, nil, err
	}
	for _, dst := range imgVolumes {
		if !slicesHasTarget(plan, dst) {
			plan = append(plan, plannedMount{m: Mount{Type: mounttypes.TypeVolume, Target: dst}})
		}
	}
	if len(plan) == 0 {
		return nil, func() {}, nil
	}

	// From here on volumes are created: undo removes them.
	type acquired struct {
		name    string
		created bool
	}
	var got []acquired
	undo = func() {
		for _, a := range got {
			e.volumes.release(a.name, id)
			if a.created {
				if err := e.volumes.remove(a.name); err != nil {
					e.log.WithError(err).WithField("volume", a.name).Warn("remove a volume made for a container that was not created")
				}
			}
		}
	}
	defer func() {
		if retErr != nil {
			undo()
		}
	}()
	for i := range plan {
		p := &plan[i]
		if p.m.Type != mounttypes.TypeVolume {
			continue
		}
		var labels map[string]string
		if p.m.VolumeOptions != nil {
			labels = p.m.VolumeOptions.Labels
		}
		name, created, err := e.volumes.acquire(p.m.Source, id, labels, e.clock.Now())
		if err != nil {
			return nil, nil, err
		}
		got = append(got, acquired{name, created})
		p.volume = name
		p.copyUp = p.m.VolumeOptions == nil || !p.m.VolumeOptions.NoCopy
	}
	if err := e.copyUp(ctx, o, plan); err != nil {
		return nil, nil, err
	}

	// Parents before children, as docker sorts them.
	sort.SliceStable(plan, func(i, j int) bool {
		return strings.Count(plan[i].m.Target, "/") < strings.Count(plan[j].m.Target, "/")
	})
	mps := make([]MountPoint, 0, len(plan))
	var ociMounts []specs.Mount
	for _, p := range plan {
		mp, om := e.mountOf(p)
		mps = append(mps, mp)
		ociMounts = append(ociMounts, om)
		switch p.propagation() {
		case mounttypes.PropagationShared, mounttypes.PropagationRShared:
			ensureLinux(spec).RootfsPropagation = "shared"
		case mounttypes.PropagationSlave, mounttypes.PropagationRSlave:
			if l := ensureLinux(spec); l.RootfsPropagation != "shared" && l.RootfsPropagation != "rshared" {
				l.RootfsPropagation = "rslave"
			}
		}
	}
	// A user's mount replaces a default one at the same place (/dev/shm, ...).
	kept := spec.Mounts[:0]
	for _, m := range spec.Mounts {
		if !slicesHasTarget(plan, path.Clean(m.Destination)) {
			kept = append(kept, m)
		}
	}
	spec.Mounts = append(kept, ociMounts...)
	return mps, undo, nil
}

func ensureLinux(s *specs.Spec) *specs.Linux {
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	return s.Linux
}

func slicesHasTarget(plan []plannedMount, dst string) bool {
	for _, p := range plan {
		if p.m.Target == dst {
			return true
		}
	}
	return false
}

func (p plannedMount) propagation() mounttypes.Propagation {
	if p.m.Type == mounttypes.TypeBind && p.m.BindOptions != nil && p.m.BindOptions.Propagation != "" {
		return p.m.BindOptions.Propagation
	}
	if p.m.Type == mounttypes.TypeTmpfs {
		return ""
	}
	return mounttypes.PropagationRPrivate
}

// mountOf returns the record and the OCI mount of a planned mount.
func (e *Engine) mountOf(p plannedMount) (MountPoint, specs.Mount) {
	mp := MountPoint{Type: p.m.Type, Destination: p.m.Target, Mode: p.mode, RW: !p.m.ReadOnly}
	om := specs.Mount{Destination: p.m.Target}
	switch p.m.Type {
	case mounttypes.TypeBind, mounttypes.TypeVolume:
		om.Type = "bind"
		om.Source = p.source
		mp.Source = p.m.Source
		if p.m.Type == mounttypes.TypeVolume {
			om.Source = e.volumes.dataDir(p.volume)
			mp.Source, mp.Name, mp.Driver = om.Source, p.volume, VolumeDriver
		} else {
			mp.Propagation = p.propagation()
		}
		bind := "rbind"
		if o := p.m.BindOptions; o != nil && o.NonRecursive {
			bind = "bind"
		}
		om.Options = []string{bind, string(p.propagation())}
		if p.m.ReadOnly {
			ro := "ro"
			if o := p.m.BindOptions; o != nil && o.ReadOnlyForceRecursive {
				ro = "rro"
			}
			om.Options = append(om.Options, ro)
		}
	case mounttypes.TypeTmpfs:
		om.Type, om.Source = "tmpfs", "tmpfs"
		om.Options = []string{"nosuid", "nodev"}
		exec := false
		if o := p.m.TmpfsOptions; o != nil {
			for _, opt := range o.Options {
				exec = opt[0] == "exec"
			}
			if o.SizeBytes > 0 {
				om.Options = append(om.Options, "size="+strconv.FormatInt(o.SizeBytes, 10))
			}
			if o.Mode != 0 {
				om.Options = append(om.Options, "mode="+strconv.FormatUint(uint64(o.Mode), 8))
			}
		}
		if !exec {
			om.Options = append(om.Options, "noexec")
		}
		if p.m.ReadOnly {
			om.Options = append(om.Options, "ro")
		}
	}
	return mp, om
}

// checkBindSource returns the host path of a bind mount with its symlinks
// resolved. It must exist; the host's root and the engine's own state
// (its root, containerd's state, Config.ProtectedPaths), or a directory
// holding them, are refused unless the container is privileged.
func (e *Engine) checkBindSource(src string, privileged bool) (string, error) {
	src = filepath.Clean(src)
	if _, err := os.Stat(src); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("bind source path does not exist: %s: create it first or fix the path (-v/--volume, --mount): %w", src, errdefs.ErrInvalidArgument)
		}
		return "", fmt.Errorf("bind source path %s: %v: %w", src, err, errdefs.ErrInvalidArgument)
	}
	real, err := filepath.EvalSymlinks(src)
	if err != nil {
		return "", fmt.Errorf("bind source path %s: %v: %w", src, err, errdefs.ErrInvalidArgument)
	}
	if privileged {
		return real, nil
	}
	if real == "/" {
		return "", fmt.Errorf("bind source %s is the host's root directory: refusing to mount it into a container: bind a narrower directory, or run the container with --privileged: %w", src, errdefs.ErrInvalidArgument)
	}
	for _, p := range e.protectedPaths() {
		if within(real, p) || within(p, real) {
			return "", fmt.Errorf("bind source %s holds or is inside the engine's state %s: refusing to mount it into a container: use a named volume or another directory, or run the container with --privileged: %w", src, p, errdefs.ErrInvalidArgument)
		}
	}
	return real, nil
}

func (e *Engine) protectedPaths() []string {
	var out []string
	for _, p := range append([]string{e.cfg.Root, e.cfg.ContainerdStateDir}, e.cfg.ProtectedPaths...) {
		if p == "" {
			continue
		}
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		out = append(out, filepath.Clean(p))
	}
	return out
}

// within reports whether p is dir or inside it.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// imageVolumes returns the image's VOLUME paths, sorted. An image that is
// not there has none here: the create fails later with its own error.
func (e *Engine) imageVolumes(ctx context.Context, o *CreateOptions) ([]string, error) {
	if o.Image == "" {
		return nil, nil
	}
	img, err := e.imageClient().GetImage(e.nsCtx(ctx), o.Image)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("image %s: %w", o.Image, err)
	}
	ic, err := img.Spec(e.nsCtx(ctx))
	if err != nil {
		return nil, fmt.Errorf("read config of image %s: %w", o.Image, err)
	}
	var out []string
	for v := range ic.Config.Volumes {
		if !path.IsAbs(v) || path.Clean(v) == "/" {
			e.log.WithField("image", o.Image).WithField("volume", v).Warn("image VOLUME is not an absolute path below /: ignored")
			continue
		}
		out = append(out, path.Clean(v))
	}
	sort.Strings(out)
	return out, nil
}

// copyUp fills each volume of plan marked copyUp that is empty with the
// content of the image (or rootfs) at its destination, with that
// directory's owner and mode, as docker does for a new volume.
func (e *Engine) copyUp(ctx context.Context, o *CreateOptions, plan []plannedMount) error {
	e.volumes.copyMu.Lock()
	defer e.volumes.copyMu.Unlock()
	var todo []plannedMount
	for _, p := range plan {
		if p.copyUp && isEmptyDir(e.volumes.dataDir(p.volume)) {
			todo = append(todo, p)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	fill := func(root string) error {
		for _, p := range todo {
			src, err := fs.RootPath(root, p.m.Target)
			if err != nil {
				return fmt.Errorf("copy image content to volume %s: %w", p.volume, err)
			}
			fi, err := os.Stat(src)
			if err != nil || !fi.IsDir() {
				continue // nothing there in the image: the volume stays empty
			}
			if err := fs.CopyDir(e.volumes.dataDir(p.volume), src, fs.WithAllowXAttrErrors()); err != nil {
				return fmt.Errorf("copy image content at %s to volume %s: %w", p.m.Target, p.volume, err)
			}
		}
		return nil
	}
	if o.Rootfs != "" {
		return fill(o.Rootfs)
	}
	return e.withImageView(ctx, o.Image, fill)
}

func isEmptyDir(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	names, _ := f.Readdirnames(1)
	return len(names) == 0
}

// withImageView mounts a read-only view of the image's root filesystem
// for f, under a lease that keeps it from containerd's garbage collector
// and removes it afterwards.
func (e *Engine) withImageView(ctx context.Context, ref string, f func(root string) error) (retErr error) {
	cc := e.imageClient()
	ctx = e.nsCtx(ctx)
	img, err := cc.GetImage(ctx, ref)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil // the create fails with the image's own error
		}
		return fmt.Errorf("image %s: %w", ref, err)
	}
	if ok, err := img.IsUnpacked(ctx, snapshotter); err == nil && !ok {
		if err := img.Unpack(ctx, snapshotter); err != nil {
			return fmt.Errorf("unpack %s: %w", ref, err)
		}
	}
	diffIDs, err := img.RootFS(ctx)
	if err != nil {
		return fmt.Errorf("image %s: layers: %w", ref, err)
	}
	ctx, done, err := cc.WithLease(ctx)
	if err != nil {
		return fmt.Errorf("copy image content to volumes: %w", err)
	}
	defer func() {
		if err := done(context.WithoutCancel(ctx)); err != nil {
			e.log.WithError(err).Warn("release the lease of a volume copy")
		}
	}()
	sn := cc.SnapshotService(snapshotter)
	key := "tend-volume-copy-" + newVolumeName()[:16]
	mounts, err := sn.View(ctx, key, identity.ChainID(diffIDs).String())
	if err != nil {
		return fmt.Errorf("view of image %s: %w", ref, err)
	}
	defer func() {
		if err := sn.Remove(context.WithoutCancel(ctx), key); err != nil && !errdefs.IsNotFound(err) {
			e.log.WithError(err).WithField("snapshot", key).Warn("remove the view of a volume copy")
		}
	}()
	return mount.WithReadonlyTempMount(ctx, mounts, f)
}
