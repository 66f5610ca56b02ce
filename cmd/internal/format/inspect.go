package format

import (
	"maps"
	"net/netip"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/storage"

	"github.com/tendhq/tend/cmd/internal/api"
	"github.com/tendhq/tend/healthcheck"
)

// DockerTime renders a time as docker's inspect does; the zero time is
// docker's "0001-01-01T00:00:00Z".
func DockerTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// DockerInspect renders a container record in docker's inspect shape (moby's
// own type), so that docker scripts work as written: .State.Status,
// .State.ExitCode, .State.Health.Status, .RestartCount, .Config.Image,
// .HostConfig.RestartPolicy.Name, .Mounts, .NetworkSettings.Ports, ... It is
// what `engine inspect` prints and what the Docker API's inspect answers.
func DockerInspect(c *api.Container) container.InspectResponse {
	o := c.Config
	cfg := &container.Config{
		Hostname: o.Hostname, User: o.User, Entrypoint: o.Entrypoint, StopSignal: o.StopSignal, StopTimeout: o.StopTimeout,
		Tty: o.Tty, OpenStdin: o.OpenStdin, Env: o.Env, Cmd: o.Cmd, Image: Image(c),
		WorkingDir: o.WorkingDir, Labels: o.Labels, Healthcheck: dockerHealthConfig(o.Health),
		AttachStdout: true, AttachStderr: true, AttachStdin: o.OpenStdin,
	}
	if cfg.Hostname == "" {
		cfg.Hostname = ShortID(c.ID)
	}
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	out := container.InspectResponse{
		ID:           c.ID,
		Created:      DockerTime(c.Created),
		Path:         "",
		Args:         []string{},
		State:        dockerState(c),
		Image:        o.Image,
		LogPath:      c.LogPath,
		Name:         "/" + c.Name,
		RestartCount: c.RestartCount,
		Driver:       "overlayfs",
		Platform:     "linux",
		HostConfig:   dockerHostConfig(c),
		GraphDriver:  &storage.DriverData{Name: "overlayfs", Data: map[string]string{}},
		Mounts:       append([]container.MountPoint{}, c.Mounts...),
		Config:       cfg,
		// The network of the current run (empty when it is not running).
		NetworkSettings: NetworkSettings(c),
	}
	if len(o.Cmd) > 0 {
		out.Path, out.Args = o.Cmd[0], append([]string{}, o.Cmd[1:]...)
	}
	if c.SizeRw != 0 || c.SizeRootFs != 0 {
		rw, rootfs := c.SizeRw, c.SizeRootFs
		out.SizeRw, out.SizeRootFs = &rw, &rootfs
	}
	return out
}

// DockerHealth is a container's health as docker shows it, nil without a
// health check.
func DockerHealth(c *api.Container) *container.Health {
	cfg := c.Config.Health
	if cfg == nil || len(cfg.Test) == 0 || cfg.Test[0] == healthcheck.TestNone {
		return nil
	}
	h := &container.Health{Status: container.Starting, Log: []*container.HealthcheckResult{}}
	if c.Health != nil {
		if c.Health.Status != "" {
			h.Status = container.HealthStatus(c.Health.Status)
		}
		h.FailingStreak = c.Health.FailingStreak
		for _, r := range c.Health.Log {
			h.Log = append(h.Log, &container.HealthcheckResult{Start: r.Start, End: r.End, ExitCode: r.ExitCode, Output: r.Output})
		}
	}
	return h
}

// DockerNetworkMode is a container's network mode as docker names it: the
// default network is "bridge".
func DockerNetworkMode(mode string) string {
	if mode == "" || mode == "default" {
		return "bridge"
	}
	return mode
}

func dockerHealthConfig(cfg *healthcheck.Config) *container.HealthConfig {
	if cfg == nil {
		return nil
	}
	return &container.HealthConfig{Test: cfg.Test, Interval: cfg.Interval, Timeout: cfg.Timeout, StartPeriod: cfg.StartPeriod, StartInterval: cfg.StartInterval, Retries: cfg.Retries}
}

func dockerState(c *api.Container) *container.State {
	st := &container.State{
		Status:     container.ContainerState(c.State),
		Running:    c.State == api.StateRunning || c.State == api.StatePaused || c.State == api.StateRestarting,
		Paused:     c.State == api.StatePaused,
		Restarting: c.State == api.StateRestarting,
		OOMKilled:  c.OOMKilled,
		Dead:       c.State == api.StateDead,
		Pid:        int(c.Pid),
		ExitCode:   c.ExitCode,
		Error:      c.Error,
		StartedAt:  DockerTime(c.StartedAt),
		FinishedAt: DockerTime(c.FinishedAt),
		Health:     DockerHealth(c),
	}
	if !st.Running {
		st.Pid = 0
	}
	return st
}

func dockerHostConfig(c *api.Container) *container.HostConfig {
	o := c.Config
	hc := &container.HostConfig{
		NetworkMode:     container.NetworkMode(DockerNetworkMode(o.NetworkMode)),
		PortBindings:    PortMap(o.Publish, false),
		PublishAllPorts: o.PublishAll,
		Binds:           o.Binds,
		Mounts:          o.Mounts,
		Privileged:      o.Privileged,
		CapAdd:          o.CapAdd,
		CapDrop:         o.CapDrop,
		SecurityOpt:     o.SecurityOpt,
		ReadonlyRootfs:  o.ReadonlyRootfs,
		Tmpfs:           o.Tmpfs,
		ShmSize:         o.ShmSize,
		DNS:             dnsAddrs(o.DNS),
		ExtraHosts:      o.ExtraHosts,
		RestartPolicy:   container.RestartPolicy{Name: container.RestartPolicyMode(o.Restart.Name), MaximumRetryCount: o.Restart.MaximumRetryCount},
		AutoRemove:      o.AutoRemove,
		LogConfig:       container.LogConfig{Type: "json-file", Config: map[string]string{}},

		Init:    o.Init,
		Runtime: "runc",
	}
	maps.Copy(hc.LogConfig.Config, o.LogOpts)
	hc.Memory = o.Resources.MemoryBytes
	hc.NanoCPUs = int64(o.Resources.CPUs * 1e9)
	if o.Resources.PidsLimit > 0 {
		n := o.Resources.PidsLimit
		hc.PidsLimit = &n
	}
	return hc
}

// dnsAddrs parses the --dns servers of a record; one that does not parse
// (an old record) is left out.
func dnsAddrs(servers []string) []netip.Addr {
	var out []netip.Addr
	for _, s := range servers {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a)
		}
	}
	return out
}
