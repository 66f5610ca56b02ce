package dockerapi

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/moby/moby/api/types/container"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/cmd/internal/api"
	"github.com/tendhq/tend/cmd/internal/format"
)

// toInspect is the engine's docker-shaped inspect, with what clients of
// the Docker API read beyond it.
func toInspect(c *backend.Container) container.InspectResponse {
	out := format.DockerInspect(c)
	// dockerd (before API 1.45) names a container on a user-defined
	// network by its short id too; compose 1.x reconnects a container
	// whose aliases lack it.
	if ns := out.NetworkSettings; ns != nil && len(c.ID) >= 12 {
		for name, ep := range ns.Networks {
			if ep != nil && name != "bridge" && name != "host" && name != "none" && !slices.Contains(ep.Aliases, c.ID[:12]) {
				ep.Aliases = append(ep.Aliases, c.ID[:12])
			}
		}
	}
	return out
}

func toSummary(c *backend.Container, now time.Time) container.Summary {
	labels := c.Config.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	s := container.Summary{
		ID:              c.ID,
		Names:           []string{"/" + c.Name},
		Image:           familiarImage(c.Config.Image),
		Command:         strings.Join(c.Config.Cmd, " "),
		Created:         c.Created.Unix(),
		Ports:           portSummaries(c),
		Labels:          labels,
		State:           container.ContainerState(c.State),
		Status:          format.Status(c, now),
		Mounts:          append([]container.MountPoint{}, c.Mounts...),
		NetworkSettings: &container.NetworkSettingsSummary{Networks: format.NetworkSettings(c).Networks},
	}
	s.HostConfig.NetworkMode = format.DockerNetworkMode(c.Config.NetworkMode)
	if h := format.DockerHealth(c); h != nil {
		s.Health = &container.HealthSummary{Status: h.Status, FailingStreak: h.FailingStreak}
	}
	return s
}

func (s *Server) listContainers(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f, err := parseFilters(q.Get("filters"))
	if err != nil {
		return err
	}
	if err := f.only("status", "label", "name", "id", "exited", "health", "ancestor", "before", "since"); err != nil {
		return err
	}
	limit := -1
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < -1 {
			return fmt.Errorf("invalid limit %s: want a number: %w", api.Echo(v), errdefs.ErrInvalidArgument)
		}
		if limit == 0 {
			limit = -1
		}
	}
	opts := backend.ListOptions{All: boolParam(r, "all") || len(f["exited"]) > 0 || len(f["before"]) > 0 || len(f["since"]) > 0 || limit > 0,
		Filters: map[string][]string{}}
	for _, k := range []string{"status", "label", "id"} {
		if vs := f.values(k); len(vs) > 0 {
			opts.Filters[k] = vs
		}
	}
	for _, st := range opts.Filters["status"] {
		if err := container.ValidateContainerState(container.ContainerState(st)); err != nil {
			return fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
		}
	}
	cs, err := s.engine.List(r.Context(), opts)
	if err != nil {
		return err
	}
	for _, h := range f.values("health") {
		if err := container.ValidateHealthStatus(container.HealthStatus(h)); err != nil {
			return fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
		}
	}
	var exited []int
	for _, v := range f.values("exited") {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("invalid exited filter %s: want an exit code: %w", api.Echo(v), errdefs.ErrInvalidArgument)
		}
		exited = append(exited, n)
	}
	// before and since name containers: keep those created before or
	// after them.
	var before, since time.Time
	for _, k := range []string{"before", "since"} {
		for _, v := range f.values(k) {
			ref, err := s.engine.Inspect(r.Context(), v)
			if err != nil {
				return err
			}
			if k == "before" {
				before = ref.Created
			} else {
				since = ref.Created
			}
		}
	}
	now := time.Now()
	out := []container.Summary{}
	for _, c := range cs {
		if !f.match("name", "") {
			ok := false
			for v := range f["name"] {
				ok = ok || strings.Contains("/"+c.Name, v) || strings.Contains(c.Name, strings.TrimPrefix(v, "/"))
			}
			if !ok {
				continue
			}
		}
		if len(exited) > 0 {
			ok := false
			for _, n := range exited {
				ok = ok || (c.State == backend.StateExited && c.ExitCode == n)
			}
			if !ok {
				continue
			}
		}
		if len(f["health"]) > 0 {
			st := container.NoHealthcheck
			if h := format.DockerHealth(c); h != nil {
				st = h.Status
			}
			if !f["health"][string(st)] {
				continue
			}
		}
		if len(f["ancestor"]) > 0 {
			ok := false
			for v := range f["ancestor"] {
				ok = ok || mustNormalize(v) == c.Config.Image
			}
			if !ok {
				continue
			}
		}
		if !before.IsZero() && !c.Created.Before(before) {
			continue
		}
		if !since.IsZero() && !c.Created.After(since) {
			continue
		}
		out = append(out, toSummary(c, now))
		if limit > 0 && len(out) == limit {
			break
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) inspectContainer(w http.ResponseWriter, r *http.Request) error {
	c, err := s.engine.Inspect(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	out := toInspect(c)
	s.mu.Lock()
	for id, x := range s.execs {
		if x.containerID == c.ID && x.running() {
			out.ExecIDs = append(out.ExecIDs, id)
		}
	}
	s.mu.Unlock()
	sort.Strings(out.ExecIDs)
	if compareVersions(requestVersion(r), legacyNetworkVersion) < 0 {
		writeJSON(w, http.StatusOK, withLegacyNetwork(out, c))
		return nil
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) removeContainer(w http.ResponseWriter, r *http.Request) error {
	if boolParam(r, "link") {
		return fmt.Errorf("link=1: links are not supported by tend: %w", errdefs.ErrInvalidArgument)
	}
	// v=1 removes anonymous volumes: tend containers have none.
	if err := s.engine.Remove(r.Context(), r.PathValue("ref"), boolParam(r, "force")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) pruneContainers(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	if err := f.only("label", "until"); err != nil {
		return err
	}
	var until time.Time
	for _, v := range f.values("until") {
		if d, err := time.ParseDuration(v); err == nil {
			until = time.Now().Add(-d)
		} else if until, err = parseDockerTime("until", v); err != nil {
			return err
		}
	}
	opts := backend.ListOptions{All: true, Filters: map[string][]string{}}
	if vs := f.values("label"); len(vs) > 0 {
		opts.Filters["label"] = vs
	}
	cs, err := s.engine.List(r.Context(), opts)
	if err != nil {
		return err
	}
	report := container.PruneReport{ContainersDeleted: []string{}}
	for _, c := range cs {
		if c.State != backend.StateExited && c.State != backend.StateCreated && c.State != backend.StateDead {
			continue
		}
		if !until.IsZero() && !c.Created.Before(until) {
			continue
		}
		if err := s.engine.Remove(r.Context(), c.ID, false); err != nil {
			if errdefs.IsNotFound(err) || errdefs.IsFailedPrecondition(err) {
				continue // removed or started meanwhile
			}
			return err
		}
		report.ContainersDeleted = append(report.ContainersDeleted, c.ID)
	}
	writeJSON(w, http.StatusOK, report)
	return nil
}

// notModified answers 304 when the container is already in the state a
// call asks for, as dockerd does for start and stop.
func (s *Server) state(r *http.Request) (*backend.Container, error) {
	return s.engine.Inspect(r.Context(), r.PathValue("ref"))
}

func (s *Server) startContainer(w http.ResponseWriter, r *http.Request) error {
	if cp := r.URL.Query().Get("checkpoint"); cp != "" {
		return fmt.Errorf("start from a checkpoint: use tend's own API (engine start --checkpoint): %w", errdefs.ErrNotImplemented)
	}
	c, err := s.state(r)
	if err != nil {
		return err
	}
	if c.State == backend.StateRunning || c.State == backend.StatePaused {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	if err := s.engine.Start(r.Context(), c.ID); err != nil {
		if c.Config.AutoRemove {
			// As dockerd: a container that was to be removed on exit is
			// removed when it cannot start (docker run --rm waits for it).
			if rerr := s.engine.Remove(context.WithoutCancel(r.Context()), c.ID, true); rerr != nil && !errdefs.IsNotFound(rerr) {
				log.G(r.Context()).WithError(rerr).WithField("container", c.ID).Warn("remove an auto-remove container that did not start")
			}
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func stopTimeout(r *http.Request) (*time.Duration, error) {
	t := r.URL.Query().Get("t")
	if t == "" || t == "-1" {
		return nil, nil
	}
	d, err := api.ParseTimeout(t)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

func checkStopSignal(r *http.Request) error {
	switch sig := r.URL.Query().Get("signal"); sig {
	case "", "SIGTERM", "TERM", "15":
		return nil
	default:
		return fmt.Errorf("stop signal %s: tend stops with SIGTERM, then SIGKILL; use kill for other signals: %w", api.Echo(sig), errdefs.ErrInvalidArgument)
	}
}

func (s *Server) stopContainer(w http.ResponseWriter, r *http.Request) error {
	if err := checkStopSignal(r); err != nil {
		return err
	}
	t, err := stopTimeout(r)
	if err != nil {
		return err
	}
	c, err := s.state(r)
	if err != nil {
		return err
	}
	if c.State == backend.StateExited || c.State == backend.StateCreated || c.State == backend.StateDead {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	if err := s.engine.Stop(r.Context(), c.ID, t); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) restartContainer(w http.ResponseWriter, r *http.Request) error {
	if err := checkStopSignal(r); err != nil {
		return err
	}
	t, err := stopTimeout(r)
	if err != nil {
		return err
	}
	if err := s.engine.Restart(r.Context(), r.PathValue("ref"), t); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) killContainer(w http.ResponseWriter, r *http.Request) error {
	sig, err := api.ParseSignal(r.URL.Query().Get("signal"))
	if err != nil {
		return err
	}
	c, err := s.state(r)
	if err != nil {
		return err
	}
	if c.State != backend.StateRunning && c.State != backend.StatePaused && c.State != backend.StateRestarting {
		return fmt.Errorf("cannot kill container: %s: container %s is not running: %w", r.PathValue("ref"), c.ID, errdefs.ErrConflict)
	}
	if err := s.engine.Kill(r.Context(), c.ID, sig); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) pauseContainer(w http.ResponseWriter, r *http.Request) error {
	if err := s.engine.Pause(r.Context(), r.PathValue("ref")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) unpauseContainer(w http.ResponseWriter, r *http.Request) error {
	if err := s.engine.Resume(r.Context(), r.PathValue("ref")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) topContainer(w http.ResponseWriter, r *http.Request) error {
	if a := r.URL.Query().Get("ps_args"); a != "" && a != "-ef" {
		return fmt.Errorf("ps_args %s: tend lists UID, PID, PPID and CMD only: %w", api.Echo(a), errdefs.ErrInvalidArgument)
	}
	ps, err := s.engine.Top(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	out := container.TopResponse{Titles: []string{"UID", "PID", "PPID", "CMD"}, Processes: [][]string{}}
	for _, p := range ps {
		out.Processes = append(out.Processes, []string{p.User, strconv.FormatUint(uint64(p.Pid), 10), strconv.FormatUint(uint64(p.PPid), 10), p.Command})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// terminalSize parses ?h= and ?w=.
func terminalSize(r *http.Request) (uint32, uint32, error) {
	q := r.URL.Query()
	ht, err1 := strconv.ParseUint(q.Get("h"), 10, 16)
	wd, err2 := strconv.ParseUint(q.Get("w"), 10, 16)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("invalid terminal size h=%s w=%s: want two numbers from 0 to %d: %w", api.Echo(q.Get("h")), api.Echo(q.Get("w")), api.MaxTerminalSize, errdefs.ErrInvalidArgument)
	}
	return uint32(wd), uint32(ht), nil
}

func (s *Server) resizeContainer(w http.ResponseWriter, r *http.Request) error {
	wd, ht, err := terminalSize(r)
	if err != nil {
		return err
	}
	if wd == 0 || ht == 0 {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if err := s.engine.Resize(r.Context(), r.PathValue("ref"), wd, ht); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
