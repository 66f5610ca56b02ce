package dockerapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/cmd/engined/internal/server"
	"github.com/tendhq/tend/cmd/internal/api"
)

// ping answers GET and HEAD /_ping with the headers clients negotiate from.
func (s *Server) ping(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Ostype", "linux")
	h.Set("Docker-Experimental", "false")
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Swarm", "inactive")
	if r.Method == http.MethodHead {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Content-Length", "0")
		return nil
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("OK"))
	return nil
}

func kernelVersion() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return string(bytes.TrimRight(u.Release[:], "\x00"))
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) error {
	v := system.VersionResponse{
		Platform:      system.PlatformInfo{Name: "tend"},
		Version:       s.opts.Version,
		APIVersion:    APIVersion,
		MinAPIVersion: MinAPIVersion,
		Os:            runtime.GOOS,
		Arch:          runtime.GOARCH,
		GoVersion:     runtime.Version(),
		KernelVersion: kernelVersion(),
	}
	v.Components = []system.ComponentVersion{{Name: "Engine", Version: s.opts.Version, Details: map[string]string{
		"ApiVersion": APIVersion, "MinAPIVersion": MinAPIVersion, "Os": v.Os, "Arch": v.Arch, "GoVersion": v.GoVersion, "KernelVersion": v.KernelVersion,
	}}}
	if info, err := s.engine.Info(r.Context()); err == nil {
		v.Components = append(v.Components, system.ComponentVersion{Name: "containerd", Version: info.ContainerdVersion})
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func osName() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "linux"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "linux"
}

func memTotal() int64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0
	}
	return int64(si.Totalram) * int64(si.Unit)
}

func cgroupVersion() string {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "2"
	}
	return "1"
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) error {
	in, err := s.engine.Info(r.Context())
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	cgv := cgroupVersion()
	cgd := "cgroupfs"
	if cgv == "2" {
		cgd = "systemd"
	}
	out := system.Info{
		ID:                 "tend",
		Containers:         in.Containers,
		ContainersRunning:  in.Running,
		ContainersPaused:   in.Paused,
		ContainersStopped:  in.Stopped,
		Images:             in.Images,
		Driver:             "overlayfs",
		MemoryLimit:        true,
		CPUCfsPeriod:       true,
		CPUCfsQuota:        true,
		PidsLimit:          true,
		SystemTime:         time.Now().Format(time.RFC3339Nano),
		LoggingDriver:      "json-file",
		CgroupDriver:       cgd,
		CgroupVersion:      cgv,
		KernelVersion:      kernelVersion(),
		OperatingSystem:    osName(),
		OSType:             "linux",
		Architecture:       runtime.GOARCH,
		NCPU:               runtime.NumCPU(),
		MemTotal:           memTotal(),
		DockerRootDir:      s.opts.Root,
		Name:               host,
		ServerVersion:      s.opts.Version,
		Runtimes:           map[string]system.RuntimeWithStatus{"runc": {Runtime: system.Runtime{Path: "runc"}}},
		DefaultRuntime:     "runc",
		LiveRestoreEnabled: in.LiveRestore,
		InitBinary:         "tend-init",
		ContainerdCommit:   system.Commit{ID: in.ContainerdVersion},
		NGoroutines:        runtime.NumGoroutine(),
		Labels:             []string{"containerd.namespace=" + in.Namespace},
		DriverStatus:       [][2]string{{"containerd namespace", in.Namespace}},
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// parseDockerTime parses since/until as Docker sends them: unix seconds
// with an optional fraction, or RFC 3339.
func parseDockerTime(key, v string) (time.Time, error) {
	t, err := server.ParseTime(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid %s %s: want unix seconds or RFC 3339: %w", key, api.Echo(v), errdefs.ErrInvalidArgument)
	}
	return t, nil
}

// dockerAction names an engine event as Docker does.
func dockerAction(ev backend.Event) events.Action {
	switch ev.Type {
	case "health_status":
		return events.Action("health_status: " + ev.Attributes["health_status"])
	case "exec_start":
		return events.Action("exec_start: " + ev.Attributes["command"])
	}
	return events.Action(ev.Type)
}

// dockerAttrs renames an event's attributes to Docker's and adds the
// container's name.
func dockerAttrs(ev backend.Event, image string) map[string]string {
	out := map[string]string{"name": ev.Name}
	if image != "" {
		out["image"] = image
	}
	for k, v := range ev.Attributes {
		switch k {
		case "exit_code":
			k = "exitCode"
		case "exec_id":
			k = "execID"
		case "health_status":
			continue
		}
		out[k] = v
	}
	return out
}

func toMessage(ev backend.Event, image string) events.Message {
	return events.Message{
		Type:   events.ContainerEventType,
		Action: dockerAction(ev),
		Actor:  events.Actor{ID: ev.ContainerID, Attributes: dockerAttrs(ev, image)},
		Scope:  "local",
		Time:   ev.Time.Unix(), TimeNano: ev.Time.UnixNano(),
	}
}

// eventFilter builds the predicate of ?filters for events: type, event,
// container, image and label; other keys are refused.
func eventFilter(f filters) (func(events.Message) bool, error) {
	if err := f.only("type", "event", "container", "image", "label"); err != nil {
		return nil, err
	}
	return func(m events.Message) bool {
		if !f.match("type", string(m.Type)) {
			return false
		}
		action := string(m.Action)
		base, _, _ := strings.Cut(action, ":")
		if !f.match("event", action) && !f.match("event", base) {
			return false
		}
		if vs := f["container"]; len(vs) > 0 {
			ok := false
			for v := range vs {
				ok = ok || v == m.Actor.Attributes["name"] || (v != "" && strings.HasPrefix(m.Actor.ID, v))
			}
			if !ok {
				return false
			}
		}
		if !f.match("image", m.Actor.Attributes["image"]) {
			return false
		}
		for v := range f["label"] {
			k, val, hasVal := strings.Cut(v, "=")
			got, ok := m.Actor.Attributes[k]
			if !ok || (hasVal && got != val) {
				return false
			}
		}
		return true
	}, nil
}

// events streams engine events as Docker's JSON messages, one per line.
func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := r.URL.Query()
	since, err := parseDockerTime("since", q.Get("since"))
	if err != nil {
		return err
	}
	var until time.Time
	if u := q.Get("until"); u != "" {
		if until, err = parseDockerTime("until", u); err != nil {
			return err
		}
	}
	f, err := parseFilters(q.Get("filters"))
	if err != nil {
		return err
	}
	keep, err := eventFilter(f)
	if err != nil {
		return err
	}
	if !until.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, until)
		defer cancel()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	images := map[string]string{} // container id -> image, for attributes
	imageOf := func(id string) string {
		if img, ok := images[id]; ok {
			return img
		}
		img := ""
		if c, err := s.engine.Inspect(ctx, id); err == nil {
			img = familiarImage(c.Config.Image)
		}
		images[id] = img
		return img
	}
	enc := newLineWriter(w, rc)
	err = s.engine.Events(ctx, since, nil, func(ev backend.Event) error {
		if !until.IsZero() && ev.Time.After(until) {
			return errUntil
		}
		m := toMessage(ev, imageOf(ev.ContainerID))
		if ev.Type == "destroy" {
			delete(images, ev.ContainerID)
		}
		if !keep(m) {
			return nil
		}
		return enc.send(m)
	})
	if err != nil && !errors.Is(err, errUntil) && ctx.Err() == nil {
		return nil // the client went away or fell behind; the stream ends
	}
	return nil
}

var errUntil = errors.New("until reached")
