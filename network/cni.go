package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// The CNI calls are libcni's (what go-cni wraps): go-cni has no option for
// libcni's cache dir, and the engine keeps that cache under its own root so
// that engines never share CNI state.

const cniVersion = "1.0.0"

// ifName is the container's interface on its network.
const ifName = "eth0"

// confList is the CNI configuration of n: a bridge with host-local IPAM
// under the Manager's root, NAT out, port mappings, the firewall's forward
// rules, and tuning.
func (m *Manager) confList(n *Network) (*libcni.NetworkConfigList, error) {
	conf := map[string]any{
		"cniVersion": cniVersion,
		"name":       n.Name,
		"plugins": []map[string]any{
			{
				"type": "bridge", "bridge": n.Bridge, "isGateway": true, "ipMasq": true, "hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": n.Subnet, "gateway": n.Gateway}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
					"dataDir": filepath.Join(m.root, "ipam"),
				},
			},
			{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
			{"type": "firewall"},
			{"type": "tuning"},
		},
	}
	data, err := json.Marshal(conf)
	if err != nil {
		return nil, err
	}
	return libcni.ConfListFromBytes(data)
}

var loConf = func() *libcni.NetworkConfigList {
	l, err := libcni.ConfListFromBytes([]byte(`{"cniVersion":"` + cniVersion + `","name":"tend-loopback","plugins":[{"type":"loopback"}]}`))
	if err != nil {
		panic(err)
	}
	return l
}()

func runtimeConf(id, nsPath, ifname string, ports []PortMapping) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{ContainerID: id, NetNS: nsPath, IfName: ifname, Args: [][2]string{{"IgnoreUnknown", "1"}}}
	if len(ports) > 0 {
		pm := make([]map[string]any, 0, len(ports))
		for _, p := range ports {
			pm = append(pm, map[string]any{"hostPort": p.HostPort, "containerPort": p.ContainerPort, "protocol": p.Protocol, "hostIP": p.HostIP})
		}
		rt.CapabilityArgs = map[string]any{"portMappings": pm}
	}
	return rt
}

// SetupLoopback brings lo up in the namespace at nsPath (the loopback
// plugin); every network mode but host gets it.
func (m *Manager) SetupLoopback(ctx context.Context, id, nsPath string) error {
	if _, err := m.cni.AddNetworkList(ctx, loConf, runtimeConf(id, nsPath, "lo", nil)); err != nil {
		return fmt.Errorf("CNI loopback: %w", err)
	}
	return nil
}

// Attach connects the namespace at nsPath to network netName (CNI ADD)
// with ports published, and returns the attachment.
func (m *Manager) Attach(ctx context.Context, id, nsPath, netName string, ports []PortMapping) (_ *Attachment, retErr error) {
	n, err := m.Get(netName)
	if err != nil {
		return nil, err
	}
	list, err := m.confList(n)
	if err != nil {
		return nil, err
	}
	rt := runtimeConf(id, nsPath, ifName, ports)
	res, err := m.cni.AddNetworkList(ctx, list, rt)
	if err != nil {
		// A failed ADD can leave part of what it did (a lease, a veth).
		m.cni.DelNetworkList(context.WithoutCancel(ctx), list, rt)
		return nil, fmt.Errorf("connect to network %s (CNI ADD): %w", n.Name, err)
	}
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		m.cni.DelNetworkList(context.WithoutCancel(ctx), list, rt)
		return nil, fmt.Errorf("network %s: CNI result: %w", n.Name, err)
	}
	a := &Attachment{Network: n.Name, NetworkID: n.ID, Ports: ports}
	for _, ipc := range r.IPs {
		if ipc.Address.IP.To4() == nil {
			continue
		}
		if ipc.Interface != nil && *ipc.Interface < len(r.Interfaces) && r.Interfaces[*ipc.Interface].Name != ifName {
			continue
		}
		a.IPAddress = ipc.Address.IP.String()
		a.PrefixLen, _ = ipc.Address.Mask.Size()
		if ipc.Gateway != nil {
			a.Gateway = ipc.Gateway.String()
		}
		if ipc.Interface != nil && *ipc.Interface < len(r.Interfaces) {
			a.MacAddress = r.Interfaces[*ipc.Interface].Mac
		}
		break
	}
	if a.IPAddress == "" {
		m.cni.DelNetworkList(context.WithoutCancel(ctx), list, rt)
		return nil, fmt.Errorf("network %s: CNI ADD gave no IPv4 address: %w", n.Name, errdefs.ErrUnknown)
	}
	return a, nil
}

// Detach undoes Attach (CNI DEL): the lease, the veth, the NAT and port
// rules. nsPath may be gone or empty (the plugins then release what they
// can find by container id). Detaching what is not attached is no error.
func (m *Manager) Detach(ctx context.Context, id, nsPath string, a *Attachment) error {
	var errs []error
	if a != nil {
		n, err := m.Get(a.Network)
		if err != nil {
			return err
		}
		list, err := m.confList(n)
		if err != nil {
			return err
		}
		if nsPath != "" {
			if _, err := os.Stat(nsPath); err != nil {
				nsPath = ""
			}
		}
		if err := delRetry(ctx, m.cni, list, runtimeConf(id, nsPath, ifName, a.Ports)); err != nil {
			errs = append(errs, fmt.Errorf("disconnect from network %s (CNI DEL): %w", n.Name, err))
		}
	}
	if nsPath != "" {
		// lo needs no clean-up but its cache entry.
		m.cni.DelNetworkList(ctx, loConf, runtimeConf(id, nsPath, "lo", nil))
	}
	return errors.Join(errs...)
}

// delAttempts is how often a failed CNI DEL is tried in all.
const delAttempts = 4

// delRetry runs a CNI DEL, again after a failure: DEL is idempotent (CNI
// spec), and the plugins' iptables calls fail now and then when other
// programs change the ruleset at the same time (iptables-nft's "CHAIN_DEL
// failed (Device or resource busy)"), which would leave a container's
// rules behind for good.
func delRetry(ctx context.Context, cni *libcni.CNIConfig, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	backoff := 50 * time.Millisecond
	for i := 1; ; i++ {
		err := cni.DelNetworkList(ctx, list, rt)
		if err == nil || i == delAttempts {
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		backoff *= 2
	}
}

// Lease is an address host-local gave out: a file in the IPAM dir.
type Lease struct {
	Network     string
	IP          string
	ContainerID string
}

// Leases lists the addresses given out on every network.
func (m *Manager) Leases() ([]Lease, error) {
	dir := filepath.Join(m.root, "ipam")
	nets, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Lease
	for _, nd := range nets {
		if !nd.IsDir() {
			continue
		}
		ents, err := os.ReadDir(filepath.Join(dir, nd.Name()))
		if err != nil {
			continue
		}
		for _, f := range ents {
			if net.ParseIP(f.Name()) == nil {
				continue // lock, last_reserved_ip.0
			}
			data, err := os.ReadFile(filepath.Join(dir, nd.Name(), f.Name()))
			if err != nil {
				continue
			}
			cid, _, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
			out = append(out, Lease{Network: nd.Name(), IP: f.Name(), ContainerID: strings.TrimSpace(cid)})
		}
	}
	return out, nil
}

// DeleteBridge deletes the bridge device of a removed network; a missing
// one is no error. (No CNI plugin deletes a bridge: the bridge plugin
// leaves it for the next container.)
func DeleteBridge(name string) error {
	if err := validBridge(name); err != nil {
		return err
	}
	if _, err := net.InterfaceByName(name); err != nil {
		return nil
	}
	if out, err := exec.Command("ip", "link", "delete", name, "type", "bridge").CombinedOutput(); err != nil {
		return fmt.Errorf("delete bridge %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}
