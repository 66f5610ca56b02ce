package backend

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

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

// matchName is docker's name filter: a regular expression matched against
// the name, with or without its leading "/" ("web", "^web$", "^/web$"); a
// value that is not one matches as a substring.
func matchName(name, v string) bool {
	re, err := regexp.Compile(v)
	if err != nil {
		return strings.Contains(name, strings.TrimPrefix(v, "/"))
	}
	return re.MatchString(name) || re.MatchString("/"+name)
}

// ListFilterKeys are the filter keys List knows.
var ListFilterKeys = []string{"status", "label", "name", "id", "health", "ancestor", "exited", "before", "since"}

// List returns copies of the selected records, newest first.
func (e *Engine) List(ctx context.Context, opts ListOptions) ([]*Container, error) {
	filters := make(map[string][]string, len(opts.Filters))
	for k, vs := range opts.Filters {
		filters[k] = append([]string(nil), vs...)
	}
	opts.Filters = filters
	for k, vs := range opts.Filters {
		switch k {
		case "status":
			for _, v := range vs {
				if !knownState(State(v)) {
					return nil, fmt.Errorf("invalid status filter %q: want created, running, paused, restarting, exited, dead or removing: %w", v, errdefs.ErrInvalidArgument)
				}
			}
		case "health":
			for _, v := range vs {
				switch v {
				case "starting", "healthy", "unhealthy", "none":
				default:
					return nil, fmt.Errorf("invalid health filter %q: want starting, healthy, unhealthy or none: %w", v, errdefs.ErrInvalidArgument)
				}
			}
		case "exited":
			for _, v := range vs {
				if _, err := strconv.Atoi(v); err != nil {
					return nil, fmt.Errorf("invalid exited filter %q: want an exit code: %w", v, errdefs.ErrInvalidArgument)
				}
			}
		case "ancestor":
			for i, v := range vs {
				ref, err := NormalizeImageRef(v)
				if err != nil {
					return nil, err
				}
				vs[i] = ref
			}
		case "before", "since":
			for i, v := range vs {
				c, err := e.lookup(v)
				if err != nil {
					return nil, fmt.Errorf("%s filter: %w", k, err)
				}
				c.mu.Lock()
				vs[i] = c.rec.Created.Format(time.RFC3339Nano)
				c.mu.Unlock()
			}
		case "label", "name", "id":
		default:
			return nil, fmt.Errorf("invalid filter %q: want one of %s: %w", k, strings.Join(ListFilterKeys, ", "), errdefs.ErrInvalidArgument)
		}
	}
	if opts.Limit < 0 {
		return nil, fmt.Errorf("invalid limit %d: want a number of containers, or 0 for all: %w", opts.Limit, errdefs.ErrInvalidArgument)
	}
	all := opts.All || opts.Limit > 0 || len(opts.Filters["status"]) > 0 || len(opts.Filters["exited"]) > 0
	var out []*Container
	for _, c := range e.containers() {
		c.mu.Lock()
		r := &c.rec
		if (all || isActive(r.State) || r.State == StateRestarting) && !c.removed && matchFilters(r, opts.Filters) {
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
	if opts.Limit > 0 && len(out) > opts.Limit {
		out = out[:opts.Limit]
	}
	return out, nil
}

// healthStatus is the health filter's view of a container: none without
// a health check.
func healthStatus(r *Container) string {
	h := r.Config.Health
	if h == nil || len(h.Test) == 0 || h.Test[0] == "NONE" {
		return "none"
	}
	if r.Health == nil || r.Health.Status == "" {
		return "starting"
	}
	return r.Health.Status
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
		any(f["name"], func(v string) bool { return matchName(r.Name, v) }) &&
		any(f["id"], func(v string) bool { return strings.HasPrefix(r.ID, v) }) &&
		any(f["health"], func(v string) bool { return healthStatus(r) == v }) &&
		any(f["ancestor"], func(v string) bool { return r.Config.Image == v }) &&
		any(f["exited"], func(v string) bool { return r.State == StateExited && strconv.Itoa(r.ExitCode) == v }) &&
		all(f["before"], func(v string) bool { t, _ := time.Parse(time.RFC3339Nano, v); return r.Created.Before(t) }) &&
		all(f["since"], func(v string) bool { t, _ := time.Parse(time.RFC3339Nano, v); return r.Created.After(t) }) &&
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
