package backend

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/tendhq/tend/network"
)

// Container networking: the engine asks its network.Manager
// (Config.Network) for a namespace and a CNI ADD before every start of a
// task, and for the DEL once the task is gone (exit, failed start, remove).
// The container's OCI spec names the namespace's fixed path, and binds
// /etc/hosts, /etc/resolv.conf and /etc/hostname from its own directory.
// Without a Manager containers run as before: a namespace of runc's with
// lo down, no files bound.

// Files bound into a container, in its directory.
const (
	hostsFile    = "hosts"
	resolvFile   = "resolv.conf"
	hostnameFile = "hostname"
)

// ErrNetworkDisabled is the error for network options on an engine
// without networking.
var ErrNetworkDisabled = fmt.Errorf("this engine runs without networking (no network manager): %w", errdefs.ErrFailedPrecondition)

// validateNetwork checks the network options and fills in the image's
// exposed ports for PublishAll.
func (e *Engine) validateNetwork(ctx context.Context, o *CreateOptions) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("invalid container options: "+format+": %w", append(args, errdefs.ErrInvalidArgument)...)
	}
	if err := network.CheckHostname(o.Hostname); err != nil {
		return err
	}
	if err := network.CheckDNS(o.DNS); err != nil {
		return err
	}
	for _, h := range o.ExtraHosts {
		if _, err := network.ParseAddHost(h); err != nil {
			return err
		}
	}
	for i, p := range o.Publish {
		if p.Protocol == "" {
			o.Publish[i].Protocol = "tcp"
			p.Protocol = "tcp"
		}
		if p.ContainerPort < 1 || p.ContainerPort > 65535 || p.HostPort < 0 || p.HostPort > 65535 || (p.Protocol != "tcp" && p.Protocol != "udp") {
			return bad("port publication %+v: want ports from 1 to 65535 (host port 0: any) and tcp or udp", p)
		}
	}
	if e.net == nil {
		if o.NetworkMode != "" || len(o.Publish) > 0 || o.PublishAll || len(o.DNS) > 0 || len(o.ExtraHosts) > 0 {
			return ErrNetworkDisabled
		}
		return nil
	}
	if o.NetworkMode == "" {
		o.NetworkMode = network.ModeBridge
	}
	switch o.NetworkMode {
	case network.ModeHost, network.ModeNone:
		if len(o.Publish) > 0 || o.PublishAll {
			return bad("ports cannot be published with --network %s: use the default bridge or a user network", o.NetworkMode)
		}
		if o.NetworkMode == network.ModeHost && o.Hostname != "" {
			return bad("--hostname cannot be set with --network host")
		}
	default:
		n, err := e.net.Get(o.NetworkMode)
		if err != nil {
			return err
		}
		o.NetworkMode = n.Name
	}
	if o.PublishAll && o.Image != "" {
		exposed, err := e.imageExposedPorts(ctx, o.Image)
		if err != nil {
			return err
		}
	next:
		for _, x := range exposed {
			for _, p := range o.Publish {
				if p.ContainerPort == x.ContainerPort && p.Protocol == x.Protocol {
					continue next
				}
			}
			o.Publish = append(o.Publish, x)
		}
		o.PublishAll = false // done: the ports are in Publish
	}
	return nil
}

// imageExposedPorts reads the EXPOSE ports of an image.
func (e *Engine) imageExposedPorts(ctx context.Context, ref string) ([]network.PortMapping, error) {
	img, err := e.imageClient().GetImage(e.nsCtx(ctx), ref)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	spec, err := img.Spec(e.nsCtx(ctx))
	if err != nil {
		return nil, fmt.Errorf("image %s: read its config: %w", ref, err)
	}
	var out []network.PortMapping
	for k := range spec.Config.ExposedPorts {
		p, err := network.ParseExposed(k)
		if err != nil {
			e.log.WithError(err).WithField("image", ref).Warn("ignoring an exposed port")
			continue
		}
		out = append(out, p)
	}
	network.SortPorts(out)
	return out, nil
}

func (e *Engine) hostname(id string, o *CreateOptions) string {
	if o.Hostname != "" {
		return o.Hostname
	}
	if o.NetworkMode == network.ModeHost {
		h, _ := os.Hostname()
		return h
	}
	return id[:12]
}

// networkSpecOpts are the spec options of o's network mode.
func (e *Engine) networkSpecOpts(id string, o *CreateOptions) []oci.SpecOpts {
	if e.net == nil {
		return nil
	}
	if o.NetworkMode == network.ModeHost {
		return []oci.SpecOpts{oci.WithHostNamespace(specs.NetworkNamespace), oci.WithHostHostsFile, oci.WithHostResolvconf,
			oci.WithHostname(e.hostname(id, o))}
	}
	dir := e.store.containerDir(id)
	bind := func(file, dest string) specs.Mount {
		return specs.Mount{Destination: dest, Type: "bind", Source: filepath.Join(dir, file), Options: []string{"rbind", "rprivate", "rw"}}
	}
	return []oci.SpecOpts{
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: e.net.NetNSPath(id)}),
		oci.WithHostname(e.hostname(id, o)),
		oci.WithMounts([]specs.Mount{bind(hostsFile, "/etc/hosts"), bind(resolvFile, "/etc/resolv.conf"), bind(hostnameFile, "/etc/hostname")}),
	}
}

// writeNetworkFiles writes the files a new container binds (the hosts file
// gets its address at every start).
func (e *Engine) writeNetworkFiles(id string, o *CreateOptions) error {
	if e.net == nil || o.NetworkMode == network.ModeHost {
		return nil
	}
	dir := e.store.containerDir(id)
	resolv, err := network.ResolvConf("/etc/resolv.conf", o.DNS)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		hostnameFile: []byte(e.hostname(id, o) + "\n"),
		resolvFile:   resolv,
		hostsFile:    e.hostsContent(id, o, "", nil),
	}
	for name, data := range files {
		if err := network.WriteInPlace(filepath.Join(dir, name), data); err != nil {
			return fmt.Errorf("write the container's %s: %w", name, err)
		}
	}
	return nil
}

func (e *Engine) hostsContent(id string, o *CreateOptions, ip string, peers []network.HostEntry) []byte {
	var extra []network.HostEntry
	for _, h := range o.ExtraHosts {
		if he, err := network.ParseAddHost(h); err == nil {
			extra = append(extra, he)
		}
	}
	extra = append(extra, peers...)
	self := []string{e.hostname(id, o)}
	if o.Name != "" && o.Name != self[0] {
		self = append(self, o.Name)
	}
	return network.HostsFile(ip, self, extra)
}

// netUp gives c's next task its network: a new namespace with lo up and,
// on a network, a CNI ADD with its ports. Called by a start with c.op held;
// on error nothing is left behind.
func (e *Engine) netUp(ctx context.Context, c *container) (retErr error) {
	if e.net == nil {
		return nil
	}
	c.mu.Lock()
	o := c.rec.Config
	old := c.rec.Network
	c.mu.Unlock()
	id := c.rec.ID
	if o.NetworkMode == network.ModeHost {
		return nil
	}
	if old != nil {
		// A run whose DEL never happened (a failed clean-up).
		e.netDown(ctx, c)
	}
	ns, err := e.net.CreateNetNS(id)
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			network.RemoveNetNS(ns)
		}
	}()
	if err := e.net.SetupLoopback(ctx, id, ns); err != nil {
		e.net.Detach(context.WithoutCancel(ctx), id, ns, nil)
		return err
	}
	ns0 := &NetworkSettings{Mode: o.NetworkMode, NetNS: ns}
	if o.NetworkMode == network.ModeNone {
		c.mu.Lock()
		c.rec.Network = ns0
		c.mu.Unlock()
		return nil
	}
	ports, err := network.ResolvePorts(o.Publish, e.heldPorts(id))
	if err != nil {
		e.net.Detach(context.WithoutCancel(ctx), id, ns, nil)
		return err
	}
	a, err := e.net.Attach(ctx, id, ns, o.NetworkMode, ports)
	if err != nil {
		e.net.Detach(context.WithoutCancel(ctx), id, ns, nil)
		return err
	}
	ns0.Attachment = a
	c.mu.Lock()
	c.rec.Network = ns0
	c.mu.Unlock()
	e.refreshHosts(a.Network)
	return nil
}

// netReleaseTimeout bounds the CNI DEL of a container (tried again after a
// failure). It is longer than opTimeout: at a load average above 100 on
// two cores one DEL (some 30 iptables processes) took more than 30s, and a
// DEL killed half-way leaves the address and rules until the engine's next
// start.
const netReleaseTimeout = 2 * time.Minute

// netDown releases what netUp gave c's last task (CNI DEL, namespace
// removal). Idempotent; errors are logged: the boot's reconcile releases
// leases a failed DEL left.
func (e *Engine) netDown(ctx context.Context, c *container) {
	if e.net == nil {
		return
	}
	c.mu.Lock()
	ns := c.rec.Network
	c.rec.Network = nil
	c.mu.Unlock()
	if ns == nil {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), netReleaseTimeout)
	defer cancel()
	lg := e.log.WithField("container", c.rec.ID)
	if err := e.net.Detach(dctx, c.rec.ID, ns.NetNS, ns.Attachment); err != nil {
		lg.WithError(err).Warn("release the container's network")
	}
	if err := network.RemoveNetNS(ns.NetNS); err != nil {
		lg.WithError(err).Warn("remove the container's network namespace")
	}
	if ns.Attachment != nil {
		e.refreshHosts(ns.Attachment.Network)
	}
}

// heldPorts are the host ports the engine's other containers publish.
func (e *Engine) heldPorts(except string) map[string]bool {
	held := map[string]bool{}
	for _, o := range e.containers() {
		if o.rec.ID == except {
			continue
		}
		o.mu.Lock()
		if o.rec.Network != nil && o.rec.Network.Attachment != nil {
			for _, p := range o.rec.Network.Attachment.Ports {
				held[p.Key()] = true
			}
		}
		o.mu.Unlock()
	}
	return held
}

// refreshHosts rewrites /etc/hosts of every container on user network
// name: each lists the others by name. The default bridge gives no name
// resolution, as Docker's.
func (e *Engine) refreshHosts(name string) {
	n, err := e.net.Get(name)
	if err != nil || n.Default {
		return
	}
	type member struct {
		id  string
		o   CreateOptions
		ip  string
		own network.HostEntry
	}
	var ms []member
	for _, c := range e.containers() {
		c.mu.Lock()
		if c.rec.Network != nil && c.rec.Network.Attachment != nil && c.rec.Network.Attachment.Network == name && !c.removed {
			ip := c.rec.Network.Attachment.IPAddress
			names := []string{c.rec.Name}
			if h := e.hostname(c.rec.ID, &c.rec.Config); h != c.rec.Name {
				names = append(names, h)
			}
			ms = append(ms, member{id: c.rec.ID, o: c.rec.Config, ip: ip, own: network.HostEntry{IP: ip, Names: names}})
		}
		c.mu.Unlock()
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].own.Names[0] < ms[j].own.Names[0] })
	e.hostsMu.Lock()
	defer e.hostsMu.Unlock()
	for _, m := range ms {
		var peers []network.HostEntry
		for _, p := range ms {
			if p.id != m.id {
				peers = append(peers, p.own)
			}
		}
		p := filepath.Join(e.store.containerDir(m.id), hostsFile)
		if err := network.WriteInPlace(p, e.hostsContent(m.id, &m.o, m.ip, peers)); err != nil && !errors.Is(err, os.ErrNotExist) {
			e.log.WithError(err).WithField("container", m.id).Warn("update /etc/hosts")
		}
	}
}

// reconcileNetwork runs at boot, after every record is reconciled: it
// releases leases and namespaces of containers that no longer run (a DEL
// the previous engine never made); a running container's lease is kept.
func (e *Engine) reconcileNetwork(ctx context.Context) {
	if e.net == nil {
		return
	}
	live := map[string]*NetworkSettings{}
	for _, c := range e.containers() {
		c.mu.Lock()
		if c.rec.Network != nil && (c.taskLive || isActive(c.rec.State)) {
			n := *c.rec.Network
			live[c.rec.ID] = &n
		}
		c.mu.Unlock()
	}
	leases, err := e.net.Leases()
	if err != nil {
		e.log.WithError(err).Warn("list the network leases")
	}
	for _, l := range leases {
		if n := live[l.ContainerID]; n != nil && n.Attachment != nil && n.Attachment.IPAddress == l.IP {
			continue
		}
		e.log.WithField("container", l.ContainerID).WithField("ip", l.IP).Info("releasing the network lease of a container that no longer runs")
		if err := e.net.Detach(ctx, l.ContainerID, "", &network.Attachment{Network: l.Network}); err != nil {
			e.log.WithError(err).WithField("container", l.ContainerID).Warn("release a stale network lease")
		}
	}
	ents, _ := os.ReadDir(filepath.Dir(e.net.NetNSPath("x")))
	for _, de := range ents {
		if _, ok := live[de.Name()]; ok || de.Name() == ".new" {
			continue
		}
		network.RemoveNetNS(e.net.NetNSPath(de.Name()))
	}
	for _, n := range e.net.List() {
		e.refreshHosts(n.Name)
	}
}

func cloneNetworkConfig(r *Container) {
	r.Config.Publish = append([]network.PortMapping(nil), r.Config.Publish...)
	r.Config.DNS = append([]string(nil), r.Config.DNS...)
	r.Config.ExtraHosts = append([]string(nil), r.Config.ExtraHosts...)
	if r.Network != nil {
		n := *r.Network
		if n.Attachment != nil {
			a := *n.Attachment
			a.Ports = append([]network.PortMapping(nil), a.Ports...)
			n.Attachment = &a
		}
		r.Network = &n
	}
}
