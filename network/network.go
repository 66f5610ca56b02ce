// Package network owns container networking through CNI: the networks
// (the default bridge and user networks) and their records, the CNI
// configuration of each (bridge with host-local IPAM, portmap, firewall,
// tuning; loopback apart), network namespaces bound at fixed paths, CNI
// ADD and DEL, published ports, and the files a container reads its
// network identity from (/etc/hosts, /etc/resolv.conf, /etc/hostname).
//
// Every piece of state lives under the Manager's root: network records,
// the IPAM leases (host-local's dataDir), the CNI result cache and the
// namespace mount points, so engines on different roots share nothing but
// the host's iptables chains that the plugins name after themselves.
//
// A Manager is safe for concurrent use; its lock guards the network map
// only, never a CNI call. The zero value is not usable: call New.
package network

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containernetworking/cni/libcni"
)

// DefaultPluginDirs are where CNI plugins are looked for: Debian's
// containernetworking-plugins, then the upstream layout.
var DefaultPluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// requiredPlugins are the CNI plugins the engine's configurations use.
var requiredPlugins = []string{"bridge", "host-local", "portmap", "firewall", "loopback", "tuning"}

// Config configures a Manager.
type Config struct {
	// Root holds networks/, ipam/, cache/ and netns/; created 0700.
	Root string
	// PluginDirs are searched for CNI plugins; default DefaultPluginDirs.
	PluginDirs []string
	// Bridge is the default bridge device; default DefaultBridge.
	Bridge string
	// Subnet is the default bridge's IPv4 subnet (CIDR); empty: the one
	// recorded before, else the first free /24 of the pool that overlaps
	// no host route.
	Subnet string
}

// Manager owns networks and the CNI calls on them.
type Manager struct {
	root       string
	pluginDirs []string
	cni        *libcni.CNIConfig

	mu   sync.Mutex
	nets map[string]*Network // (mu) by name
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)

func validName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("invalid network name %q: want letters, digits, '_', '.' or '-' (at most 63, not starting with a punctuation mark): %w", name, errdefs.ErrInvalidArgument)
	}
	return nil
}

var idRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)

func validID(id string) error {
	if !idRE.MatchString(id) || id == "." || id == ".." {
		return fmt.Errorf("invalid container id %q: %w", id, errdefs.ErrInvalidArgument)
	}
	return nil
}

// New loads the networks under cfg.Root, checks the CNI plugins, and
// sets up the default bridge's record: its subnet is checked against the
// host's routes (a route of its own bridge aside).
func New(cfg Config) (*Manager, error) {
	if cfg.Root == "" || !filepath.IsAbs(cfg.Root) {
		return nil, fmt.Errorf("network root %q: want an absolute path: %w", cfg.Root, errdefs.ErrInvalidArgument)
	}
	if len(cfg.PluginDirs) == 0 {
		cfg.PluginDirs = DefaultPluginDirs
	}
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultBridge
	}
	if err := validBridge(cfg.Bridge); err != nil {
		return nil, err
	}
	for _, p := range requiredPlugins {
		if _, err := findPlugin(cfg.PluginDirs, p); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{"", "networks", "ipam", "cache", "netns"} {
		p := filepath.Join(cfg.Root, d)
		if err := os.MkdirAll(p, 0o700); err != nil {
			return nil, fmt.Errorf("create network directory: %w", err)
		}
		if err := os.Chmod(p, 0o700); err != nil {
			return nil, fmt.Errorf("network directory %s: %w", p, err)
		}
	}
	m := &Manager{
		root:       cfg.Root,
		pluginDirs: cfg.PluginDirs,
		cni:        libcni.NewCNIConfigWithCacheDir(cfg.PluginDirs, filepath.Join(cfg.Root, "cache"), nil),
		nets:       map[string]*Network{},
	}
	if err := m.load(); err != nil {
		return nil, err
	}
	if err := m.setupDefault(cfg.Bridge, cfg.Subnet); err != nil {
		return nil, err
	}
	return m, nil
}

func validBridge(name string) error {
	if len(name) == 0 || len(name) > 15 || strings.ContainsAny(name, "/ \t\n:") || name == "." || name == ".." {
		return fmt.Errorf("invalid bridge name %q: want an interface name of 1 to 15 characters: %w", name, errdefs.ErrInvalidArgument)
	}
	return nil
}

func findPlugin(dirs []string, name string) (string, error) {
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("CNI plugin %q not found in %s: install Debian's containernetworking-plugins (scripts/setup.sh does): %w",
		name, strings.Join(dirs, ", "), errdefs.ErrFailedPrecondition)
}

func (m *Manager) recordPath(name string) string {
	return filepath.Join(m.root, "networks", name+".json")
}

func (m *Manager) load() error {
	ents, err := os.ReadDir(filepath.Join(m.root, "networks"))
	if err != nil {
		return fmt.Errorf("read networks: %w", err)
	}
	for _, de := range ents {
		name, ok := strings.CutSuffix(de.Name(), ".json")
		if !ok || validName(name) != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(m.root, "networks", de.Name()))
		if err != nil {
			return fmt.Errorf("read network %s: %w", name, err)
		}
		var n Network
		if err := json.Unmarshal(data, &n); err != nil || n.Name != name {
			return fmt.Errorf("network record %s is corrupt (%v): remove it: %w", de.Name(), err, errdefs.ErrDataLoss)
		}
		m.nets[name] = &n
	}
	return nil
}

func (m *Manager) write(n *Network) error {
	data, err := json.MarshalIndent(n, "", "  ")
	if err != nil {
		return err
	}
	p := m.recordPath(n.Name)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write network %s: %w", n.Name, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write network %s: %w", n.Name, err)
	}
	return nil
}

func (m *Manager) setupDefault(bridge, subnet string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.nets[ModeBridge]
	n := &Network{Name: ModeBridge, Driver: "bridge", Bridge: bridge, Default: true, Created: time.Now().UTC()}
	if old != nil {
		n.ID, n.Created, n.Subnet, n.Gateway = old.ID, old.Created, old.Subnet, old.Gateway
		if old.Bridge != bridge {
			n.Subnet = "" // a new bridge: check again
		}
	} else {
		n.ID = newID()
	}
	switch {
	case subnet != "":
		sn, gw, err := parseSubnet(subnet)
		if err != nil {
			return fmt.Errorf("default bridge: %w", err)
		}
		if err := checkRoutes(sn, bridge); err != nil {
			return fmt.Errorf("default bridge subnet: %w", err)
		}
		n.Subnet, n.Gateway = sn.String(), gw.String()
	case n.Subnet != "":
		sn, _, err := parseSubnet(n.Subnet)
		if err == nil {
			err = checkRoutes(sn, bridge)
		}
		if err != nil {
			return fmt.Errorf("default bridge's recorded subnet: %w (give another with --bridge-subnet)", err)
		}
	default:
		sn, gw, err := m.pickSubnetLocked(bridge)
		if err != nil {
			return err
		}
		n.Subnet, n.Gateway = sn.String(), gw.String()
	}
	for _, o := range m.nets {
		if o.Name != ModeBridge && o.Bridge == bridge {
			return fmt.Errorf("default bridge %s is the bridge of network %s: pick another --bridge: %w", bridge, o.Name, errdefs.ErrAlreadyExists)
		}
	}
	if err := m.write(n); err != nil {
		return err
	}
	m.nets[ModeBridge] = n
	return nil
}

func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// parseSubnet parses an IPv4 CIDR and returns the network and its gateway
// (the first address).
func parseSubnet(s string) (*net.IPNet, net.IP, error) {
	ip, sn, err := net.ParseCIDR(s)
	if err != nil || ip.To4() == nil {
		return nil, nil, fmt.Errorf("invalid subnet %q: want an IPv4 CIDR such as 10.88.7.0/24: %w", s, errdefs.ErrInvalidArgument)
	}
	ones, bits := sn.Mask.Size()
	if ones < 8 || ones > 28 || bits != 32 {
		return nil, nil, fmt.Errorf("invalid subnet %q: want a prefix length from /8 to /28: %w", s, errdefs.ErrInvalidArgument)
	}
	if !sn.IP.Equal(ip) {
		return nil, nil, fmt.Errorf("invalid subnet %q: host bits set, did you mean %s?: %w", s, sn, errdefs.ErrInvalidArgument)
	}
	gw := make(net.IP, 4)
	copy(gw, sn.IP.To4())
	gw[3]++
	return sn, gw, nil
}

func overlaps(a, b *net.IPNet) bool { return a.Contains(b.IP) || b.Contains(a.IP) }

// route is one IPv4 route of the host.
type route struct {
	dev string
	dst *net.IPNet
}

// hostRoutes reads the host's IPv4 routes (the default route aside).
func hostRoutes() ([]route, error) {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return nil, fmt.Errorf("read host routes: %w", err)
	}
	defer f.Close()
	var out []route
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 8 || fs[0] == "Iface" {
			continue
		}
		dst, err1 := strconv.ParseUint(fs[1], 16, 32)
		mask, err2 := strconv.ParseUint(fs[7], 16, 32)
		if err1 != nil || err2 != nil || mask == 0 {
			continue
		}
		// /proc/net/route is in host (little-endian) byte order.
		le := func(v uint64) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }
		out = append(out, route{dev: fs[0], dst: &net.IPNet{IP: net.IP(le(dst)), Mask: net.IPMask(le(mask))}})
	}
	return out, sc.Err()
}

// checkRoutes fails when sn overlaps a host route of a device other than
// bridge (its own route, once the bridge is up, is no conflict).
func checkRoutes(sn *net.IPNet, bridge string) error {
	rs, err := hostRoutes()
	if err != nil {
		return err
	}
	for _, r := range rs {
		if r.dev != bridge && overlaps(sn, r.dst) {
			return fmt.Errorf("subnet %s overlaps the host route %s on %s: give another subnet: %w", sn, r.dst, r.dev, errdefs.ErrConflict)
		}
	}
	return nil
}

// pool is where subnets are picked from: /24s of 10.88.0.0/14.
var pool = net.IPNet{IP: net.IPv4(10, 88, 0, 0).To4(), Mask: net.CIDRMask(14, 32)}

// pickSubnetLocked returns the first /24 of the pool that overlaps no host
// route (but one of bridge itself) and no network of this engine.
func (m *Manager) pickSubnetLocked(bridge string) (*net.IPNet, net.IP, error) {
	rs, err := hostRoutes()
	if err != nil {
		return nil, nil, err
	}
	var used []*net.IPNet
	for _, r := range rs {
		if r.dev != bridge {
			used = append(used, r.dst)
		}
	}
	for _, n := range m.nets {
		if n.Bridge == bridge {
			continue
		}
		if _, sn, err := net.ParseCIDR(n.Subnet); err == nil {
			used = append(used, sn)
		}
	}
	base := pool.IP.To4()
	for i := 0; i < 1024; i++ {
		ip := net.IPv4(base[0], base[1]+byte(i/256), byte(i%256), 0).To4()
		sn := &net.IPNet{IP: ip, Mask: net.CIDRMask(24, 32)}
		free := true
		for _, u := range used {
			if overlaps(sn, u) {
				free = false
				break
			}
		}
		if free {
			gw := net.IPv4(ip[0], ip[1], ip[2], 1).To4()
			return sn, gw, nil
		}
	}
	return nil, nil, fmt.Errorf("no free /24 left in %s: give a subnet: %w", pool.String(), errdefs.ErrResourceExhausted)
}

// Create creates a user network. Its name must be free and not a mode
// (bridge, none, host); its subnet must overlap no host route and no other
// network (errdefs.ErrConflict).
func (m *Manager) Create(opts CreateOptions) (*Network, error) {
	if err := validName(opts.Name); err != nil {
		return nil, err
	}
	switch opts.Name {
	case ModeBridge, ModeNone, ModeHost, "default":
		return nil, fmt.Errorf("network name %q is reserved: pick another: %w", opts.Name, errdefs.ErrInvalidArgument)
	}
	id := newID()
	bridge := "tn-" + id[:12]
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.nets[opts.Name]; ok {
		return nil, fmt.Errorf("network %s already exists: %w", opts.Name, errdefs.ErrAlreadyExists)
	}
	var sn *net.IPNet
	var gw net.IP
	var err error
	if opts.Subnet != "" {
		if sn, gw, err = parseSubnet(opts.Subnet); err != nil {
			return nil, err
		}
		if err := checkRoutes(sn, bridge); err != nil {
			return nil, err
		}
		for _, o := range m.nets {
			if _, osn, err := net.ParseCIDR(o.Subnet); err == nil && overlaps(sn, osn) {
				return nil, fmt.Errorf("subnet %s overlaps network %s (%s): give another subnet: %w", sn, o.Name, o.Subnet, errdefs.ErrConflict)
			}
		}
	} else if sn, gw, err = m.pickSubnetLocked(bridge); err != nil {
		return nil, err
	}
	n := &Network{Name: opts.Name, ID: id, Driver: "bridge", Bridge: bridge, Subnet: sn.String(), Gateway: gw.String(),
		Created: time.Now().UTC(), Labels: opts.Labels}
	if err := m.write(n); err != nil {
		return nil, err
	}
	m.nets[n.Name] = n
	out := *n
	return &out, nil
}

// Get returns the network called ref (a name, or an ID or its unique
// prefix of at least 4 characters); errdefs.ErrNotFound when none.
func (m *Manager) Get(ref string) (*Network, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.getLocked(ref)
	if err != nil {
		return nil, err
	}
	out := *n
	return &out, nil
}

func (m *Manager) getLocked(ref string) (*Network, error) {
	if ref == ModeDefault {
		ref = ModeBridge
	}
	if n, ok := m.nets[ref]; ok {
		return n, nil
	}
	if len(ref) >= 4 {
		var found *Network
		for _, n := range m.nets {
			if strings.HasPrefix(n.ID, ref) {
				if found != nil {
					return nil, fmt.Errorf("network id prefix %s is ambiguous: give more of it: %w", ref, errdefs.ErrInvalidArgument)
				}
				found = n
			}
		}
		if found != nil {
			return found, nil
		}
	}
	return nil, fmt.Errorf("network %s not found: list them with `engine network ls`: %w", ref, errdefs.ErrNotFound)
}

// List returns the networks sorted by name.
func (m *Manager) List() []Network {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Network, 0, len(m.nets))
	for _, n := range m.nets {
		out = append(out, *n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Remove removes a user network; the caller checks that no container
// uses it. Its bridge device is deleted by DeleteBridge.
func (m *Manager) Remove(ref string) (*Network, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.getLocked(ref)
	if err != nil {
		return nil, err
	}
	if n.Default {
		return nil, fmt.Errorf("network %s is the default network: it cannot be removed: %w", n.Name, errdefs.ErrFailedPrecondition)
	}
	if err := os.Remove(m.recordPath(n.Name)); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("remove network %s: %w", n.Name, err)
	}
	delete(m.nets, n.Name)
	os.RemoveAll(filepath.Join(m.root, "ipam", n.Name))
	out := *n
	return &out, nil
}
