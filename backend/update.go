package backend

import (
	"context"
	"fmt"
	"runtime"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// linuxResources are r as the OCI spec's cgroup limits; zero limits are
// "no limit".
func linuxResources(r Resources) *specs.LinuxResources {
	lr := &specs.LinuxResources{}
	mem := r.MemoryBytes
	if mem == 0 {
		mem = -1
	}
	lr.Memory = &specs.LinuxMemory{Limit: &mem}
	const period = 100000
	quota := int64(-1)
	if r.CPUs > 0 {
		quota = int64(r.CPUs * period)
	}
	p := uint64(period)
	lr.CPU = &specs.LinuxCPU{Quota: &quota, Period: &p}
	pids := r.PidsLimit
	if pids == 0 {
		pids = -1
	}
	lr.Pids = &specs.LinuxPids{Limit: &pids}
	return lr
}

// Update changes a container's resource limits and restart policy. A
// running or paused container's cgroup is changed at once; every
// container's next start uses the new limits.
func (e *Engine) Update(ctx context.Context, ref string, opts UpdateOptions) error {
	if opts.Resources == nil && opts.Restart == nil {
		return fmt.Errorf("nothing to update: give resources or a restart policy: %w", errdefs.ErrInvalidArgument)
	}
	if opts.Resources != nil {
		if err := CheckResources(*opts.Resources, runtime.NumCPU()); err != nil {
			return err
		}
	}
	if p := opts.Restart; p != nil {
		if err := validateRestartPolicy(*p); err != nil {
			return err
		}
		if err := CheckRestart(*p); err != nil {
			return err
		}
		if p.Name == "" {
			p.Name = RestartNo
		}
	}
	c, err := e.lockContainer(ref)
	if err != nil {
		return err
	}
	defer c.op.Unlock()
	c.mu.Lock()
	id, state, autoRemove, exits := c.rec.ID, c.rec.State, c.rec.Config.AutoRemove, c.exits
	c.mu.Unlock()
	if p := opts.Restart; p != nil && autoRemove && p.Name != RestartNo {
		return fmt.Errorf("restart policy %s conflicts with the container's auto-remove (--rm): %w", p, errdefs.ErrInvalidArgument)
	}
	ctx = e.nsCtx(ctx)
	if r := opts.Resources; r != nil {
		lr := linuxResources(*r)
		if isActive(state) {
			// A task that stopped meanwhile has nothing to update: as for
			// a stopped container, the spec below is what counts.
			if err := e.client.UpdateResources(ctx, id, lr); err != nil && !stoppedSince(c, exits) {
				return fmt.Errorf("update resources of %s: %w", shortID(id), err)
			}
		}
		// The next task gets them from the container's spec.
		ctr, err := e.imageClient().LoadContainer(ctx, id)
		if err != nil {
			return fmt.Errorf("update %s: %w", shortID(id), err)
		}
		spec, err := ctr.Spec(ctx)
		if err != nil {
			return fmt.Errorf("update %s: %w", shortID(id), err)
		}
		if spec.Linux == nil {
			spec.Linux = &specs.Linux{}
		}
		if spec.Linux.Resources == nil {
			spec.Linux.Resources = &specs.LinuxResources{}
		}
		spec.Linux.Resources.Memory, spec.Linux.Resources.CPU, spec.Linux.Resources.Pids = lr.Memory, lr.CPU, lr.Pids
		if err := ctr.Update(ctx, containerd.UpdateContainerOpts(containerd.WithSpec(spec))); err != nil {
			return fmt.Errorf("update %s: %w", shortID(id), err)
		}
	}
	c.mu.Lock()
	if r := opts.Resources; r != nil {
		c.rec.Config.Resources = *r
	}
	if p := opts.Restart; p != nil {
		c.rec.Config.Restart = *p
	}
	snap := e.snapLocked(c)
	e.emitLocked(c, "update", nil)
	e.notifyLocked(c)
	c.mu.Unlock()
	e.save(c, snap)
	return nil
}

// Prune removes every stopped container (created, exited or dead), as
// docker container prune; filters: "label" (KEY or KEY=VALUE; "label!="
// is not supported) and "until" (created before, RFC 3339).
func (e *Engine) Prune(ctx context.Context, filters map[string][]string) (ContainerPruneReport, error) {
	var rep ContainerPruneReport
	f := map[string][]string{}
	for k, vs := range filters {
		switch k {
		case "label":
			f[k] = vs
		default:
			return rep, fmt.Errorf("invalid prune filter %q: want label: %w", k, errdefs.ErrInvalidArgument)
		}
	}
	cs, err := e.List(ctx, ListOptions{All: true, Filters: f})
	if err != nil {
		return rep, err
	}
	for _, c := range cs {
		if c.State != StateCreated && c.State != StateExited && c.State != StateDead {
			continue
		}
		u, _ := e.Size(ctx, c.ID)
		if err := e.Remove(ctx, c.ID, false); err != nil {
			if errdefs.IsNotFound(err) || errdefs.IsFailedPrecondition(err) || errdefs.IsConflict(err) {
				continue // started or removed meanwhile
			}
			return rep, err
		}
		rep.ContainersDeleted = append(rep.ContainersDeleted, c.ID)
		rep.SpaceReclaimed += uint64(u.SizeRw)
	}
	return rep, nil
}
