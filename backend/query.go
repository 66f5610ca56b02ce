package backend

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/containerd/errdefs"
)

// Inspect returns a copy of the container's record.
func (e *Engine) Inspect(ctx context.Context, ref string) (*Container, error) {
	c, err := e.lookup(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed { // between the lookup and the lock
		return nil, fmt.Errorf("No such container: %s: %w", ref, errdefs.ErrNotFound)
	}
	out := cloneRecord(c.rec)
	return &out, nil
}

// ListOptions select containers for List. Without All only running, paused
// and restarting containers are listed. Filters keys: "status" (a state),
// "label" ("k" or "k=v"), "name" (substring), "id" (prefix); values of one
// key are alternatives, keys must all match.
type ListOptions struct {
	All     bool
	Filters map[string][]string
}

// List returns copies of the selected records, newest first.
func (e *Engine) List(ctx context.Context, opts ListOptions) ([]*Container, error) {
	for k, vs := range opts.Filters {
		switch k {
		case "status":
			for _, v := range vs {
				if !knownState(State(v)) {
					return nil, fmt.Errorf("invalid status filter %q: want created, running, paused, restarting, exited, dead or removing: %w", v, errdefs.ErrInvalidArgument)
				}
			}
		case "label", "name", "id":
		default:
			return nil, fmt.Errorf("invalid filter %q: want status, label, name or id: %w", k, errdefs.ErrInvalidArgument)
		}
	}
	var out []*Container
	for _, c := range e.containers() {
		c.mu.Lock()
		r := &c.rec
		if (opts.All || isActive(r.State) || r.State == StateRestarting || len(opts.Filters["status"]) > 0) &&
			!c.removed && matchFilters(r, opts.Filters) {
			cp := cloneRecord(*r)
			out = append(out, &cp)
		}
		c.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func matchFilters(r *Container, f map[string][]string) bool {
	any := func(vs []string, match func(string) bool) bool {
		if len(vs) == 0 {
			return true
		}
		for _, v := range vs {
			if match(v) {
				return true
			}
		}
		return false
	}
	return any(f["status"], func(v string) bool { return string(r.State) == v }) &&
		any(f["name"], func(v string) bool { return strings.Contains(r.Name, strings.TrimPrefix(v, "/")) }) &&
		any(f["id"], func(v string) bool { return strings.HasPrefix(r.ID, v) }) &&
		all(f["label"], func(v string) bool {
			k, val, hasVal := strings.Cut(v, "=")
			got, ok := r.Config.Labels[k]
			return ok && (!hasVal || got == val)
		})
}

func all(vs []string, match func(string) bool) bool {
	for _, v := range vs {
		if !match(v) {
			return false
		}
	}
	return true
}

// WaitCondition says what Wait waits for.
type WaitCondition string

// Wait conditions.
const (
	WaitNextExit   WaitCondition = "next-exit"   // the next exit of the main process
	WaitNotRunning WaitCondition = "not-running" // the container is created, exited or dead (the default)
	WaitRemoved    WaitCondition = "removed"     // the container is removed
)

// Wait blocks until cond holds and returns the last exit code. A container
// with a pending restart is still running for WaitNotRunning.
func (e *Engine) Wait(ctx context.Context, ref string, cond WaitCondition) (int, error) {
	c, err := e.resolve(ref)
	if err != nil {
		return 0, err
	}
	if cond == "" {
		cond = WaitNotRunning
	}
	switch cond {
	case WaitNextExit, WaitNotRunning, WaitRemoved:
	default:
		return 0, fmt.Errorf("invalid wait condition %q: want next-exit, not-running or removed: %w", cond, errdefs.ErrInvalidArgument)
	}
	c.mu.Lock()
	exits := c.exits
	c.mu.Unlock()
	var code int
	err = e.waitChange(ctx, c, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		code = c.rec.ExitCode
		switch cond {
		case WaitNextExit:
			return c.exits > exits || c.removed
		case WaitRemoved:
			return c.removed
		default:
			s := c.rec.State
			return c.removed || s == StateCreated || s == StateExited || s == StateDead
		}
	}, nil)
	return code, err
}
