package libcontainerd

import (
	"context"
	"encoding/json"
	"fmt"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func (c *client) Create(ctx context.Context, id string, spec *specs.Spec, opts ...CreateOption) error {
	ctx, err := c.enter(ctx)
	if err != nil {
		return err
	}
	if err := ValidateID(id); err != nil {
		return err
	}
	if spec == nil {
		return fmt.Errorf("create %s: spec is nil: %w", id, errdefs.ErrInvalidArgument)
	}
	cfg := createConfig{snapshotter: defaultSnapshotter, runtime: defaultRuntime}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return fmt.Errorf("create %s: %w", id, err)
		}
	}
	var newOpts []containerd.NewContainerOpts
	if cfg.image != "" {
		img, err := c.cc.GetImage(ctx, cfg.image)
		if err != nil {
			if errdefs.IsNotFound(err) {
				return fmt.Errorf("create %s: image %q not found: import it first: %w", id, cfg.image, errdefs.ErrNotFound)
			}
			return fmt.Errorf("create %s: image %q: %w", id, cfg.image, err)
		}
		unpacked, err := img.IsUnpacked(ctx, cfg.snapshotter)
		if err != nil {
			return fmt.Errorf("create %s: check unpack of %q: %w", id, cfg.image, err)
		}
		if !unpacked {
			if err := img.Unpack(ctx, cfg.snapshotter); err != nil {
				return fmt.Errorf("create %s: unpack %q with %s: %w", id, cfg.image, cfg.snapshotter, err)
			}
		}
		if spec, err = withImageConfig(ctx, spec, img); err != nil {
			return fmt.Errorf("create %s: %w", id, err)
		}
		newOpts = append(newOpts,
			containerd.WithImage(img),
			containerd.WithSnapshotter(cfg.snapshotter),
			containerd.WithNewSnapshot(id, img))
	} else if spec.Root == nil || spec.Root.Path == "" {
		return fmt.Errorf("create %s: spec has no root filesystem: set spec.Root.Path to a rootfs directory or use WithImage: %w", id, errdefs.ErrInvalidArgument)
	}
	if spec.Process == nil || len(spec.Process.Args) == 0 || spec.Process.Args[0] == "" {
		return fmt.Errorf("create %s: no command (nor one from the image): give the program to run in spec.Process.Args: %w", id, errdefs.ErrInvalidArgument)
	}
	if len(cfg.init) > 0 {
		s, p := *spec, *spec.Process
		p.Args = append(append([]string(nil), cfg.init...), p.Args...)
		s.Process = &p
		spec = &s
	}
	newOpts = append(newOpts,
		containerd.WithSpec(spec),
		containerd.WithRuntime(cfg.runtime, cfg.runtimeOpts),
		containerd.WithContainerLabels(cfg.labels))
	newOpts = append(newOpts, cfg.extra...)

	ctr, err := c.cc.NewContainer(ctx, id, newOpts...)
	if err != nil {
		if errdefs.IsAlreadyExists(err) {
			return fmt.Errorf("create %s: a container with this id already exists: pick another id or delete it: %w", id, errdefs.ErrAlreadyExists)
		}
		return fmt.Errorf("create %s: %w", id, err)
	}
	c.mu.Lock()
	c.containers[id] = &container{ctr: ctr, terminal: spec.Process.Terminal, procs: map[string]*process{}}
	c.mu.Unlock()
	return nil
}

// withImageConfig returns a copy of spec whose unset command, environment
// and working directory come from the image, with the root filesystem set to
// the snapshot containerd mounts for the task.
//
// containerd's oci.WithImageConfig(Args) does not give the same result, so
// it is not used: it keeps the image's entrypoint in front of the spec's
// args (WithImage promises the spec's command as given), always replaces
// the spec's working directory, adds a default PATH to an image without
// one, applies the image's USER, and reads a variable without "=" as an
// unset where mergeEnv keeps it.
func withImageConfig(ctx context.Context, spec *specs.Spec, img containerd.Image) (*specs.Spec, error) {
	ic, err := img.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("read config of image %s: %w", img.Name(), err)
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("copy spec: %w", err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("copy spec: %w", err)
	}
	readonly := s.Root != nil && s.Root.Readonly
	s.Root = &specs.Root{Path: "rootfs", Readonly: readonly}
	if s.Process == nil {
		s.Process = &specs.Process{Cwd: "/"}
	}
	if len(s.Process.Args) == 0 {
		s.Process.Args = append(append([]string{}, ic.Config.Entrypoint...), ic.Config.Cmd...)
	}
	if (s.Process.Cwd == "" || s.Process.Cwd == "/") && ic.Config.WorkingDir != "" {
		s.Process.Cwd = ic.Config.WorkingDir
	}
	s.Process.Env = mergeEnv(ic.Config.Env, s.Process.Env)
	return &s, nil
}

// mergeEnv returns base overridden by over, by variable name, keeping order.
func mergeEnv(base, over []string) []string {
	name := func(kv string) string {
		for i := 0; i < len(kv); i++ {
			if kv[i] == '=' {
				return kv[:i]
			}
		}
		return kv
	}
	idx := map[string]int{}
	out := make([]string, 0, len(base)+len(over))
	for _, kv := range append(append([]string{}, base...), over...) {
		if i, ok := idx[name(kv)]; ok {
			out[i] = kv
			continue
		}
		idx[name(kv)] = len(out)
		out = append(out, kv)
	}
	return out
}
