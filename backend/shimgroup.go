package backend

import (
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Shared shims. containerd's runc v2 shim serves every container
// whose spec carries the same io.containerd.runc.v2.group annotation: the
// first one's task start starts the shim, the others' find its socket and
// join it (CRI puts a pod in one shim the same way). A shim costs ~2.7 MiB
// of PSS at rest; a group of N costs about that once. The price is shared
// fate: when the shim dies, containerd runs the cleanup of every task it
// served and each container exits (status 255 or the one runc reports), so
// the engine records each exit once and applies each restart policy, as
// for a shim of its own. Everything else is per container, as before: its
// task, stdio FIFOs, exec processes, pause, checkpoint and restore, and
// live-restore (containerd reconnects each task to the group's socket).

// autoShimGroupPrefix names the groups the engine makes; a ShimGroup given
// by the user may be anything ValidateID accepts.
const autoShimGroupPrefix = "tend-shim-"

// shimPacker fills auto groups up to a size. The engine's containers are
// the source of truth (their records keep the group); pending holds the
// groups of containers being created, not yet in the engine's map.
type shimPacker struct {
	mu      sync.Mutex
	pending map[string]string // container id -> group, during Create
}

// assignShimGroup picks the group of a new container id (o.ShimGroup when
// given, else an auto group with room, else a new one named after id) and
// holds it until the returned release runs, after the container was added
// to the engine's map or its create failed.
func (e *Engine) assignShimGroup(id string, o *CreateOptions) (release func()) {
	size := e.cfg.ContainersPerShim
	if o.ShimGroup != "" || size <= 1 {
		return func() {}
	}
	p := &e.shims
	p.mu.Lock()
	defer p.mu.Unlock()
	counts := map[string]int{}
	for _, g := range p.pending {
		counts[g]++
	}
	e.mu.Lock()
	ctrs := make([]*container, 0, len(e.ctrs))
	for cid, c := range e.ctrs {
		if _, creating := p.pending[cid]; !creating {
			ctrs = append(ctrs, c)
		}
	}
	e.mu.Unlock()
	for _, c := range ctrs {
		c.mu.Lock()
		g, removed := c.rec.Config.ShimGroup, c.removed
		c.mu.Unlock()
		if g != "" && !removed {
			counts[g]++
		}
	}
	group := ""
	for g, n := range counts {
		// The fullest auto group with room: groups fill one at a time.
		if len(g) > len(autoShimGroupPrefix) && g[:len(autoShimGroupPrefix)] == autoShimGroupPrefix &&
			n < size && (group == "" || n > counts[group] || (n == counts[group] && g < group)) {
			group = g
		}
	}
	if group == "" {
		group = autoShimGroupPrefix + id[:12]
	}
	o.ShimGroup = group
	if p.pending == nil {
		p.pending = map[string]string{}
	}
	p.pending[id] = group
	return func() {
		p.mu.Lock()
		delete(p.pending, id)
		p.mu.Unlock()
	}
}

// withShimGroup puts the container's group in its spec, where the shim
// reads it when a task starts.
func withShimGroup(spec *specs.Spec, group string) {
	if group == "" {
		return
	}
	if spec.Annotations == nil {
		spec.Annotations = map[string]string{}
	}
	spec.Annotations[ShimGroupAnnotation] = group
}
