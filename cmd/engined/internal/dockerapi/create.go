package dockerapi

import (
	"fmt"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/cmd/internal/api"
	"github.com/tendhq/tend/cmd/internal/format"
	"github.com/tendhq/tend/healthcheck"
	tnet "github.com/tendhq/tend/network"
)

// unsupportedField is a request field tend cannot honour yet.
type unsupportedField struct {
	name string
	set  bool
}

func refuseUnsupported(fields []unsupportedField) error {
	var names []string
	for _, f := range fields {
		if f.set {
			names = append(names, f.name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	return fmt.Errorf("%s: not supported by tend's Docker API yet; create the container without it: %w", strings.Join(names, ", "), errdefs.ErrInvalidArgument)
}

// portBindings maps HostConfig.PortBindings onto the engine's mappings.
func portBindings(pm network.PortMap) ([]tnet.PortMapping, error) {
	var out []tnet.PortMapping
	for port, bindings := range pm {
		if len(bindings) == 0 {
			bindings = []network.PortBinding{{}}
		}
		for _, b := range bindings {
			m := tnet.PortMapping{ContainerPort: int(port.Num()), Protocol: string(port.Proto())}
			if b.HostIP.IsValid() && !b.HostIP.IsUnspecified() {
				m.HostIP = b.HostIP.String()
			}
			if b.HostPort != "" {
				n, err := strconv.ParseUint(b.HostPort, 10, 16)
				if err != nil {
					return nil, fmt.Errorf("HostConfig.PortBindings: host port %s: want a number from 0 to 65535 (ranges are not supported): %w", api.Echo(b.HostPort), errdefs.ErrInvalidArgument)
				}
				m.HostPort = int(n)
			}
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ContainerPort < out[j].ContainerPort })
	return out, nil
}

// exposedPorts maps Config.ExposedPorts (docker run --expose, and every
// port of -p) for PublishAllPorts: each one no PortBindings entry publishes
// gets a free host port, as docker run -P does. Without PublishAllPorts
// an exposed port is metadata only.
func exposedPorts(exposed network.PortSet, published []tnet.PortMapping, all bool) []tnet.PortMapping {
	if !all {
		return nil
	}
	have := map[string]bool{}
	for _, m := range published {
		have[strconv.Itoa(m.ContainerPort)+"/"+strings.ToLower(m.Protocol)] = true
	}
	var out []tnet.PortMapping
	for port := range exposed {
		m := tnet.PortMapping{ContainerPort: int(port.Num()), Protocol: string(port.Proto())}
		if key := strconv.Itoa(m.ContainerPort) + "/" + strings.ToLower(m.Protocol); !have[key] {
			have[key] = true
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ContainerPort != out[j].ContainerPort {
			return out[i].ContainerPort < out[j].ContainerPort
		}
		return out[i].Protocol < out[j].Protocol
	})
	return out
}

// toCreateOptions maps a Docker create request onto the engine's options,
// refusing with 400 each field the engine cannot honour.
func toCreateOptions(name string, req *container.CreateRequest) (backend.CreateOptions, error) {
	var o backend.CreateOptions
	cfg := req.Config
	if cfg == nil {
		return o, fmt.Errorf("config cannot be empty in order to create a container: %w", errdefs.ErrInvalidArgument)
	}
	hc := req.HostConfig
	if hc == nil {
		hc = &container.HostConfig{}
	}
	if cfg.Image == "" {
		return o, fmt.Errorf("no image was given: set Image: %w", errdefs.ErrInvalidArgument)
	}
	// One endpoint, on the network of NetworkMode (or naming it when
	// NetworkMode is the default), without addresses or links: what
	// docker run --network and compose send. Aliases are accepted and not
	// resolved: containers are found by name.
	endpointsOK := true
	netMode := hc.NetworkMode
	if req.NetworkingConfig != nil {
		eps := req.NetworkingConfig.EndpointsConfig
		if len(eps) == 1 && (netMode == "" || netMode == "default") {
			for k := range eps {
				netMode = container.NetworkMode(k)
			}
		}
		for k, ep := range eps {
			endpointsOK = endpointsOK && format.DockerNetworkMode(k) == format.DockerNetworkMode(string(netMode)) &&
				(ep == nil || (noAddresses(ep.IPAMConfig) && len(ep.Links) == 0))
		}
	}
	r := hc.Resources
	if err := refuseUnsupported(append([]unsupportedField{
		{"Config.Domainname", cfg.Domainname != ""},
		{"Config.NetworkDisabled", cfg.NetworkDisabled},
		{"HostConfig.VolumesFrom", len(hc.VolumesFrom) > 0},
		{"HostConfig.VolumeDriver", hc.VolumeDriver != ""},
		{"NetworkingConfig.EndpointsConfig", !endpointsOK},
		{"HostConfig.DnsOptions", len(hc.DNSOptions) > 0},
		{"HostConfig.DnsSearch", len(hc.DNSSearch) > 0},
		{"HostConfig.Links", len(hc.Links) > 0},
		{"HostConfig.GroupAdd", len(hc.GroupAdd) > 0},
		{"HostConfig.IpcMode", hc.IpcMode != "" && hc.IpcMode != "private" && hc.IpcMode != "shareable"},
		{"HostConfig.PidMode", hc.PidMode != ""},
		{"HostConfig.UTSMode", hc.UTSMode != ""},
		{"HostConfig.UsernsMode", hc.UsernsMode != ""},
		{"HostConfig.CgroupnsMode", hc.CgroupnsMode != "" && hc.CgroupnsMode != "private"},
		{"HostConfig.Cgroup", hc.Cgroup != ""},
		{"HostConfig.Sysctls", len(hc.Sysctls) > 0},
		{"HostConfig.StorageOpt", len(hc.StorageOpt) > 0},
		{"HostConfig.OomScoreAdj", hc.OomScoreAdj != 0},
		{"HostConfig.Runtime", hc.Runtime != "" && hc.Runtime != "runc"},
		{"HostConfig.LogConfig.Type " + hc.LogConfig.Type, hc.LogConfig.Type != "" && hc.LogConfig.Type != "json-file"},
		{"HostConfig.LogConfig.Config", len(hc.LogConfig.Config) > 0},
		{"HostConfig.Annotations", len(hc.Annotations) > 0},
		{"HostConfig.MaskedPaths", len(hc.MaskedPaths) > 0},
		{"HostConfig.ReadonlyPaths", len(hc.ReadonlyPaths) > 0},
		{"HostConfig.Isolation", hc.Isolation != "" && hc.Isolation != "default"},
	}, unsupportedResources(r)...)); err != nil {
		return o, err
	}
	o.Name = strings.TrimPrefix(name, "/")
	o.Image = cfg.Image
	o.Cmd = append([]string(nil), cfg.Cmd...)
	if cfg.Entrypoint != nil {
		o.Entrypoint = append([]string{}, cfg.Entrypoint...)
	}
	o.Env = cfg.Env
	o.WorkingDir = cfg.WorkingDir
	o.Labels = cfg.Labels
	o.Tty = cfg.Tty
	o.OpenStdin = cfg.OpenStdin
	o.AutoRemove = hc.AutoRemove
	o.Init = hc.Init
	// Networking, mounts and volumes: what the engine has since issues 12
	// and 13; it checks them itself.
	o.NetworkMode = format.DockerNetworkMode(string(netMode))
	o.Hostname = cfg.Hostname
	o.PublishAll = hc.PublishAllPorts
	publish, err := portBindings(hc.PortBindings)
	if err != nil {
		return o, err
	}
	o.Publish = append(publish, exposedPorts(cfg.ExposedPorts, publish, hc.PublishAllPorts)...)
	for _, a := range hc.DNS {
		o.DNS = append(o.DNS, a.String())
	}
	o.ExtraHosts = hc.ExtraHosts
	o.Binds = append([]string(nil), hc.Binds...)
	anon := make([]string, 0, len(cfg.Volumes))
	for path := range cfg.Volumes {
		anon = append(anon, path) // docker run -v /path: an anonymous volume
	}
	sort.Strings(anon)
	o.Binds = append(o.Binds, anon...)
	o.Mounts = hc.Mounts
	o.Tmpfs = hc.Tmpfs
	o.Privileged = hc.Privileged
	// Confinement.
	o.User = cfg.User
	o.StopSignal = cfg.StopSignal
	o.StopTimeout = cfg.StopTimeout
	o.CapAdd, o.CapDrop = hc.CapAdd, hc.CapDrop
	o.SecurityOpt = hc.SecurityOpt
	o.ReadonlyRootfs = hc.ReadonlyRootfs
	o.ShmSize = hc.ShmSize
	for _, u := range r.Ulimits {
		if u != nil {
			o.Ulimits = append(o.Ulimits, backend.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
		}
	}
	mode := string(hc.RestartPolicy.Name)
	if mode == "" {
		mode = backend.RestartNo
	}
	o.Restart = backend.RestartPolicy{Name: mode, MaximumRetryCount: hc.RestartPolicy.MaximumRetryCount}
	if hc.RestartPolicy.MaximumRetryCount != 0 && mode != backend.RestartOnFailure {
		return o, fmt.Errorf("invalid restart policy: maximum retry count can only be used with 'on-failure': %w", errdefs.ErrInvalidArgument)
	}
	if hc.RestartPolicy.MaximumRetryCount < 0 {
		return o, fmt.Errorf("invalid restart policy: maximum retry count cannot be negative: %w", errdefs.ErrInvalidArgument)
	}
	if h := cfg.Healthcheck; h != nil && len(h.Test) > 0 {
		for _, d := range []struct {
			name string
			v    int64
		}{{"Interval", int64(h.Interval)}, {"Timeout", int64(h.Timeout)}, {"StartPeriod", int64(h.StartPeriod)}, {"StartInterval", int64(h.StartInterval)}, {"Retries", int64(h.Retries)}} {
			if d.v < 0 {
				return o, fmt.Errorf("Healthcheck.%s cannot be negative: %w", d.name, errdefs.ErrInvalidArgument)
			}
		}
		o.Health = &healthcheck.Config{
			Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries,
		}
	}
	if o.Resources, err = toResources(r); err != nil {
		return o, err
	}
	if err := api.CheckCreate(&o, runtime.NumCPU()); err != nil {
		return o, err
	}
	return o, nil
}

func (s *Server) createContainer(w http.ResponseWriter, r *http.Request) error {
	var req container.CreateRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if p := r.URL.Query().Get("platform"); p != "" && p != "linux" && p != "linux/"+runtime.GOARCH {
		return fmt.Errorf("platform %s: tend runs linux/%s images only: %w", api.Echo(p), runtime.GOARCH, errdefs.ErrInvalidArgument)
	}
	opts, err := toCreateOptions(r.URL.Query().Get("name"), &req)
	if err != nil {
		return err
	}
	c, err := s.engine.Create(r.Context(), opts)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("No such image: %s: %w", familiarImage(mustNormalize(opts.Image)), errdefs.ErrNotFound)
		}
		return err
	}
	writeJSON(w, http.StatusCreated, container.CreateResponse{ID: c.ID, Warnings: []string{}})
	return nil
}

func mustNormalize(ref string) string {
	n, err := backend.NormalizeImageRef(ref)
	if err != nil {
		return ref
	}
	return n
}

// unsupportedResources are the cgroup settings of r the engine cannot
// honour: create and update refuse them alike.
func unsupportedResources(r container.Resources) []unsupportedField {
	return []unsupportedField{
		{"HostConfig.CpuShares", r.CPUShares != 0},
		{"HostConfig.CgroupParent", r.CgroupParent != ""},
		{"HostConfig.BlkioWeight", r.BlkioWeight != 0 || len(r.BlkioWeightDevice) > 0},
		{"HostConfig.BlkioDevice*", len(r.BlkioDeviceReadBps)+len(r.BlkioDeviceWriteBps)+len(r.BlkioDeviceReadIOps)+len(r.BlkioDeviceWriteIOps) > 0},
		{"HostConfig.CpuRealtime*", r.CPURealtimePeriod != 0 || r.CPURealtimeRuntime != 0},
		{"HostConfig.CpusetCpus", r.CpusetCpus != ""},
		{"HostConfig.CpusetMems", r.CpusetMems != ""},
		{"HostConfig.Devices", len(r.Devices) > 0},
		{"HostConfig.DeviceCgroupRules", len(r.DeviceCgroupRules) > 0},
		{"HostConfig.DeviceRequests", len(r.DeviceRequests) > 0},
		{"HostConfig.MemoryReservation", r.MemoryReservation != 0},
		{"HostConfig.MemorySwap", r.MemorySwap != 0 && r.MemorySwap != -1 && r.MemorySwap != r.Memory},
		{"HostConfig.MemorySwappiness", r.MemorySwappiness != nil && *r.MemorySwappiness != -1},
		{"HostConfig.OomKillDisable", r.OomKillDisable != nil && *r.OomKillDisable},
		{"HostConfig.CpuCount", r.CPUCount != 0 || r.CPUPercent != 0},
		{"HostConfig.IOMaximum*", r.IOMaximumIOps != 0 || r.IOMaximumBandwidth != 0},
		{"HostConfig.NanoCpus with CpuQuota", r.NanoCPUs != 0 && r.CPUQuota != 0},
	}
}

// toResources maps Docker's memory, CPU and pids limits onto the engine's;
// zero fields are "no limit".
func toResources(r container.Resources) (backend.Resources, error) {
	var out backend.Resources
	if r.Memory < 0 || r.NanoCPUs < 0 || r.CPUQuota < 0 || r.CPUPeriod < 0 {
		return out, fmt.Errorf("HostConfig.Memory, NanoCpus, CpuQuota and CpuPeriod cannot be negative: %w", errdefs.ErrInvalidArgument)
	}
	out.MemoryBytes = r.Memory
	switch {
	case r.NanoCPUs > 0:
		out.CPUs = float64(r.NanoCPUs) / 1e9
	case r.CPUQuota > 0:
		period := r.CPUPeriod
		if period == 0 {
			period = 100000
		}
		out.CPUs = float64(r.CPUQuota) / float64(period)
	case r.CPUPeriod != 0:
		return out, fmt.Errorf("HostConfig.CpuPeriod without CpuQuota: not supported by tend's Docker API yet: %w", errdefs.ErrInvalidArgument)
	}
	if r.PidsLimit != nil && *r.PidsLimit > 0 {
		out.PidsLimit = *r.PidsLimit
	}
	return out, nil
}

func noAddresses(c *network.EndpointIPAMConfig) bool {
	return c == nil || (!c.IPv4Address.IsValid() && !c.IPv6Address.IsValid() && len(c.LinkLocalIPs) == 0)
}
