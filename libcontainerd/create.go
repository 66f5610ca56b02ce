package libcontainerd

import (
	"context"
	"encoding/json"

	"fmt"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
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
	spec, err = copySpec(spec)
	if err != nil {
		return fmt.Errorf("create %s: %w", id, err)
	}
	var newOpts []containerd.NewContainerOpts
	var specOpts []oci.SpecOpts
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
		// containerd mounts the snapshot at the bundle's rootfs.
		spec.Root = &specs.Root{Path: "rootfs", Readonly: spec.Root != nil && spec.Root.Readonly}
		newOpts = append(newOpts,
			containerd.WithImage(img),
			containerd.WithSnapshotter(cfg.snapshotter),
			containerd.WithNewSnapshot(id, img))
		specOpts = append(specOpts, withImageConfig(img, cfg.entrypoint))
	} else if spec.Root == nil || spec.Root.Path == "" {
		return fmt.Errorf("create %s: spec has no root filesystem: set spec.Root.Path to a rootfs directory or use WithImage: %w", id, errdefs.ErrInvalidArgument)
	} else if spec.Process == nil || len(spec.Process.Args) == 0 || spec.Process.Args[0] == "" {
		return errNoCommand(id)
	}
	if cfg.user != "" {
		specOpts = append(specOpts, withUser(cfg.user))
	}
	specOpts = append(specOpts, withUserCapabilities, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil || len(s.Process.Args) == 0 || s.Process.Args[0] == "" {
			return errNoCommand(id)
		}
		if len(cfg.init) > 0 {
			s.Process.Args = append(append([]string(nil), cfg.init...), s.Process.Args...)
		}
		return nil
	})
	newOpts = append(newOpts,
		containerd.WithSpec(spec, specOpts...),
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
	c.containers[id] = &container{ctr: ctr, terminal: spec.Process.Terminal, procs: map[string]*process{}, spec: spec}
	c.mu.Unlock()
	return nil
}

func errNoCommand(id string) error {
	return fmt.Errorf("create %s: no command (nor one from the image): give the program to run in spec.Process.Args: %w", id, errdefs.ErrInvalidArgument)
}

// copySpec returns a deep copy of spec, which Create then completes.
func copySpec(spec *specs.Spec) (*specs.Spec, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("copy spec: %w", err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("copy spec: %w", err)
	}
	return &s, nil
}

// withImageConfig applies the image's config with Docker's semantics
// through containerd's oci.WithImageConfigArgs: the spec's args replace
// the image's CMD; entrypoint, when not nil, replaces the image's
// ENTRYPOINT and drops its CMD; the spec's working directory, when set,
// wins over the image's WORKDIR.
func withImageConfig(img containerd.Image, entrypoint []string) oci.SpecOpts {
	return func(ctx context.Context, client oci.Client, c *containers.Container, s *oci.Spec) error {
		var args []string
		cwd := ""
		if s.Process != nil {
			args, cwd = s.Process.Args, s.Process.Cwd
		}
		if err := oci.WithImageConfigArgs(img, args)(ctx, client, c, s); err != nil {
			return classifyUserError(fmt.Sprintf("the image's USER (%s)", img.Name()), err)
		}
		if entrypoint != nil {
			s.Process.Args = append(append([]string{}, entrypoint...), args...)
		}
		if cwd != "" {
			s.Process.Cwd = cwd
		}
		return nil
	}
}
