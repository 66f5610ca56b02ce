package format

import (
	"net/netip"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/tendhq/tend/cmd/engine/internal/api"
	"github.com/tendhq/tend/healthcheck"
)

// dockerTime renders a time as docker's inspect does; the zero time is
// docker's "0001-01-01T00:00:00Z".
func dockerTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// DockerInspect renders a container record in docker's inspect shape (moby's
// own type), so that docker scripts work as written: .State.Status,
// .State.ExitCode, .State.Health.Status, .RestartCount, .Config.Image,
// .HostConfig.RestartPolicy.Name, .Mounts, .NetworkSettings.Ports, ... What
// tend has no notion of (a graph driver) is left empty.
func DockerInspect(c *api.Container) container.InspectResponse {
	st := &container.State{
		Status:     container.ContainerState(c.State),
		Running:    c.State == api.StateRunning || c.State == api.StatePaused,
		Paused:     c.State == api.StatePaused,
		Restarting: c.State == api.StateRestarting,
		OOMKilled:  c.OOMKilled,
		Dead:       c.State == api.StateDead,
		Pid:        int(c.Pid),
		ExitCode:   c.ExitCode,
		Error:      c.Error,
		StartedAt:  dockerTime(c.StartedAt),
		FinishedAt: dockerTime(c.FinishedAt),
	}
	if hc := c.Config.Health; hc != nil && len(hc.Test) > 0 && hc.Test[0] != healthcheck.TestNone {
		h := &container.Health{Status: container.Starting}
		if c.Health != nil {
			if c.Health.Status != "" {
				h.Status = container.HealthStatus(c.Health.Status)
			}
			h.FailingStreak = c.Health.FailingStreak
			for _, r := range c.Health.Log {
				h.Log = append(h.Log, &container.HealthcheckResult{Start: r.Start, End: r.End, ExitCode: r.ExitCode, Output: r.Output})
			}
		}
		st.Health = h
	}
	cfg := &container.Config{
		Hostname:   c.Config.Hostname,
		User:       c.Config.User,
		Entrypoint: c.Config.Entrypoint,
		StopSignal: c.Config.StopSignal,
		Tty:        c.Config.Tty,
		OpenStdin:  c.Config.OpenStdin,
		Env:        c.Config.Env,
		Cmd:        c.Config.Cmd,
		Image:      Image(c),
		WorkingDir: c.Config.WorkingDir,
		Labels:     c.Config.Labels,
	}
	if cfg.Hostname == "" {
		cfg.Hostname = shortIDOf(c.ID)
	}
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	if hc := c.Config.Health; hc != nil {
		cfg.Healthcheck = &container.HealthConfig{Test: hc.Test, Interval: hc.Interval, Timeout: hc.Timeout,
			StartPeriod: hc.StartPeriod, StartInterval: hc.StartInterval, Retries: hc.Retries}
	}
	r := c.Config.Resources
	hostCfg := &container.HostConfig{
		RestartPolicy:   container.RestartPolicy{Name: container.RestartPolicyMode(c.Config.Restart.Name), MaximumRetryCount: c.Config.Restart.MaximumRetryCount},
		AutoRemove:      c.Config.AutoRemove,
		Init:            c.Config.Init,
		Binds:           c.Config.Binds,
		NetworkMode:     container.NetworkMode(c.Config.NetworkMode),
		PortBindings:    PortMap(c.Config.Publish, false),
		Privileged:      c.Config.Privileged,
		CapAdd:          c.Config.CapAdd,
		CapDrop:         c.Config.CapDrop,
		SecurityOpt:     c.Config.SecurityOpt,
		ReadonlyRootfs:  c.Config.ReadonlyRootfs,
		DNS:             dnsAddrs(c.Config.DNS),
		ExtraHosts:      c.Config.ExtraHosts,
		PublishAllPorts: c.Config.PublishAll,
		Resources:       container.Resources{Memory: r.MemoryBytes, NanoCPUs: int64(r.CPUs * 1e9)},
	}
	if r.PidsLimit > 0 {
		n := r.PidsLimit
		hostCfg.PidsLimit = &n
	}
	var path string
	var args []string
	if len(c.Config.Cmd) > 0 {
		path, args = c.Config.Cmd[0], c.Config.Cmd[1:]
	}
	if args == nil {
		args = []string{}
	}
	out := container.InspectResponse{
		ID:           c.ID,
		Created:      dockerTime(c.Created),
		Path:         path,
		Args:         args,
		State:        st,
		Image:        c.Config.Image,
		LogPath:      c.LogPath,
		Name:         "/" + c.Name,
		RestartCount: c.RestartCount,
		Driver:       "overlayfs",
		Platform:     "linux",
		HostConfig:   hostCfg,
		Mounts:       append([]container.MountPoint{}, c.Mounts...),
		Config:       cfg,
		// The network of the current run (empty when it is not running).
		NetworkSettings: NetworkSettings(c),
	}
	if c.SizeRw != 0 || c.SizeRootFs != 0 {
		rw, rootfs := c.SizeRw, c.SizeRootFs
		out.SizeRw, out.SizeRootFs = &rw, &rootfs
	}
	return out
}

func shortIDOf(id string) string { return ShortID(id) }

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
