package backend

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/tendhq/tend/io/jsonlog"
	"github.com/tendhq/tend/libcontainerd"
)

func validateCreate(o *CreateOptions) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("invalid container options: "+format+": %w", append(args, errdefs.ErrInvalidArgument)...)
	}
	if o.Name != "" && libcontainerd.ValidateID(strings.TrimPrefix(o.Name, "/")) != nil {
		return bad("name %q: want letters and digits joined by single '_', '.' or '-', at most 76 characters", o.Name)
	}
	switch {
	case o.Image == "" && o.Rootfs == "":
		return bad("give an image or a rootfs directory")
	case o.Image != "" && o.Rootfs != "":
		return bad("give an image or a rootfs directory, not both")
	case o.Image != "":
		ref, err := NormalizeImageRef(o.Image)
		if err != nil {
			return err
		}
		o.Image = ref
	case o.Rootfs != "":
		if !filepath.IsAbs(o.Rootfs) || filepath.Clean(o.Rootfs) != o.Rootfs {
			return bad("rootfs %q: want a clean absolute path", o.Rootfs)
		}
		fi, err := os.Stat(o.Rootfs)
		if err != nil || !fi.IsDir() {
			return bad("rootfs %q is not a directory", o.Rootfs)
		}
		if len(o.Cmd) == 0 {
			return bad("a rootfs container needs a command")
		}
	}
	if o.WorkingDir != "" && !filepath.IsAbs(o.WorkingDir) {
		return bad("working directory %q: want an absolute path", o.WorkingDir)
	}
	if err := CheckCmd(o.Cmd); err != nil {
		return err
	}
	if err := CheckLabels(o.Labels); err != nil {
		return err
	}
	for _, kv := range o.Env {
		if k, _, _ := strings.Cut(kv, "="); k == "" {
			return bad("environment variable %q: want NAME=value", kv)
		}
	}
	o.Env = MergeEnv(nil, o.Env)
	if err := checkConfinement(o); err != nil {
		return err
	}
	if o.Rootfs != "" && o.Entrypoint != nil {
		return bad("--entrypoint needs an image: a rootfs container runs its command as given")
	}
	if err := validateRestartPolicy(o.Restart); err != nil {
		return err
	}
	if o.Restart.Name == "" {
		o.Restart.Name = RestartNo
	}
	if o.AutoRemove && o.Restart.Name != RestartNo {
		return bad("auto-remove conflicts with restart policy %s: use one or the other", o.Restart)
	}
	if err := CheckHealth(o.Health); err != nil {
		return err
	}
	if err := checkMounts(o); err != nil {
		return err
	}
	if err := CheckShimGroup(o.ShimGroup); err != nil {
		return err
	}
	if err := CheckLogOpts(o.LogOpts); err != nil {
		return err
	}
	return CheckResources(o.Resources, runtime.NumCPU())
}

// buildSpec derives the OCI spec of a container from its options. For an
// image, the command, environment, working directory and user are
// completed by libcontainerd from the image's config (see
// libcontainerd.WithImage).
func (e *Engine) buildSpec(id string, o *CreateOptions) (*specs.Spec, error) {
	var opts []oci.SpecOpts
	if o.Image == "" {
		opts = append(opts, oci.WithDefaultPathEnv)
	}
	if len(o.Cmd) > 0 {
		opts = append(opts, oci.WithProcessArgs(o.Cmd...))
	}
	if o.Rootfs != "" {
		opts = append(opts, oci.WithRootFSPath(o.Rootfs))
	}
	if len(o.Env) > 0 {
		opts = append(opts, oci.WithEnv(o.Env))
	}
	if o.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(o.WorkingDir))
	}
	if o.Tty {
		opts = append(opts, oci.WithTTY)
	}
	if o.Resources.MemoryBytes > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(o.Resources.MemoryBytes)))
	}
	if o.Resources.CPUs > 0 {
		const period = 100000
		opts = append(opts, oci.WithCPUCFS(int64(o.Resources.CPUs*period), period))
	}
	if o.Resources.PidsLimit > 0 {
		opts = append(opts, oci.WithPidsLimit(o.Resources.PidsLimit))
	}
	confine, err := e.confinementOpts(o)
	if err != nil {
		return nil, err
	}
	opts = append(opts, confine...)
	s, err := oci.GenerateSpec(e.ctx, nil, &containers.Container{ID: id}, opts...)
	if err != nil {
		return nil, fmt.Errorf("build OCI spec: %w", err)
	}
	if len(o.Cmd) == 0 {
		s.Process.Args = nil // the image's command
	}
	if o.Image != "" && o.WorkingDir == "" {
		s.Process.Cwd = "" // the image's WORKDIR
	}
	return s, nil
}

// imageStopSignal is the image's STOPSIGNAL, or SIGTERM.
func (e *Engine) imageStopSignal(ctx context.Context, ref string) (string, error) {
	ctx = e.nsCtx(ctx)
	img, err := e.imageClient().GetImage(ctx, ref)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return "", fmt.Errorf("image %q not found: import it first: %w", ref, errdefs.ErrNotFound)
		}
		return "", fmt.Errorf("image %q: %w", ref, err)
	}
	sig, err := containerd.GetOCIStopSignal(ctx, img, "SIGTERM")
	if err != nil {
		return "", fmt.Errorf("read the stop signal of image %q: %w", ref, err)
	}
	return sig, nil
}

// Create creates a container (state created) from opts and returns its
// record. The id is 64 hex characters; the name is generated when empty and
// must be unique (errdefs.ErrAlreadyExists otherwise).
func (e *Engine) Create(ctx context.Context, opts CreateOptions) (_ *Container, retErr error) {
	o := cloneRecord(Container{Config: opts}).Config
	typedImage := o.Image
	if err := validateCreate(&o); err != nil {
		return nil, err
	}
	e.netMu.RLock() // the network stays until the container exists
	defer e.netMu.RUnlock()
	if err := e.validateNetwork(ctx, &o); err != nil {
		return nil, err
	}
	o.Name = strings.TrimPrefix(o.Name, "/")
	id := newID()
	e.mu.Lock()
	if e.closed.Load() {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	if o.Name == "" {
		o.Name = e.generateNameLocked(id)
	} else if other, used := e.names[o.Name]; used {
		e.mu.Unlock()
		return nil, fmt.Errorf("the name %q is in use by container %s: remove it or pick another name: %w", o.Name, shortID(other), errdefs.ErrAlreadyExists)
	}
	e.names[o.Name] = id // reserved while creating
	e.mu.Unlock()
	defer func() {
		if retErr != nil {
			e.mu.Lock()
			if e.names[o.Name] == id {
				delete(e.names, o.Name)
			}
			e.mu.Unlock()
		}
	}()

	if o.StopSignal == "" {
		o.StopSignal = "SIGTERM"
		if o.Image != "" {
			sig, err := e.imageStopSignal(ctx, o.Image)
			if err != nil {
				return nil, err
			}
			o.StopSignal = sig
		}
	}
	useInit, err := e.wantInit(&o)
	if err != nil {
		return nil, err
	}
	o.Init = &useInit
	defer e.assignShimGroup(id, &o)()
	spec, err := e.buildSpec(id, &o)
	if err != nil {
		return nil, err
	}
	withShimGroup(spec, o.ShimGroup)
	for _, opt := range e.networkSpecOpts(id, &o) {
		if err := opt(e.ctx, nil, &containers.Container{ID: id}, spec); err != nil {
			return nil, fmt.Errorf("create %s: network spec: %w", shortID(id), err)
		}
	}
	mounts, undoMounts, err := e.setupMounts(ctx, id, &o, spec)
	if err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			undoMounts()
		}
	}()
	if err := e.store.create(id); err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			e.store.remove(id)
		}
	}()
	if err := e.writeNetworkFiles(id, &o); err != nil {
		return nil, fmt.Errorf("create %s: %w", shortID(id), err)
	}
	copts := []libcontainerd.CreateOption{libcontainerd.WithLabels(o.Labels)}
	if useInit {
		opt, err := e.withInit(id, spec)
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", shortID(id), err)
		}
		copts = append(copts, opt)
	} else if e.wantProbeInit(&o) {
		e.mountInit(spec)
	}
	logPath := filepath.Join(e.store.containerDir(id), logFile)
	w, err := jsonlog.Open(logPath, jsonlog.Options{})
	if err != nil {
		return nil, fmt.Errorf("create %s: open log: %w", shortID(id), err)
	}
	defer func() {
		if retErr != nil {
			w.Close()
		}
	}()
	if o.Image != "" {
		copts = append(copts, libcontainerd.WithImage(o.Image))
		if o.Entrypoint != nil {
			copts = append(copts, libcontainerd.WithEntrypoint(o.Entrypoint...))
		}
	}
	if o.User != "" {
		copts = append(copts, libcontainerd.WithUser(o.User))
	}
	if err := e.client.Create(ctx, id, spec, copts...); err != nil {
		return nil, err
	}
	c := &container{
		rec: Container{
			ID: id, Name: o.Name, Created: e.clock.Now(), Config: o, State: StateCreated, LogPath: logPath,
			Mounts:    mounts,
			ImageName: typedImage,
		},
		changed: make(chan struct{}),
		logw:    w,
		attachs: newAttachSet(),
		noTask:  true,
	}
	// The record must be on disk before the container is visible.
	if err := e.store.write(&c.rec); err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
		defer cancel()
		e.client.Delete(cctx, id)
		return nil, err
	}
	// Locked before it is visible, so that the create event comes first.
	c.mu.Lock()
	defer c.mu.Unlock()
	e.mu.Lock()
	e.ctrs[id] = c
	e.mu.Unlock()
	e.emitLocked(c, "create", nil)
	out := cloneRecord(c.rec)
	return &out, nil
}
