package integration

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Every test daemon gets a bridge and a subnet of its own, so
// that daemons running in parallel (in this binary or another) never share
// one: both derive from the daemon's root, so a daemon restarted on the
// same root finds its own again. The subnets come from 10.92.0.0/14, apart
// from the engine's default pool (10.88.0.0/14).

// testBridge returns the bridge device and subnet of the daemon on root.
func testBridge(root string) (string, string) {
	h := fnv.New32a()
	h.Write([]byte(root))
	v := h.Sum32()
	bridge := fmt.Sprintf("tt%08x", v)
	for i := uint32(0); i < 1024; i++ {
		n := (v + i) % 1024
		sn := fmt.Sprintf("10.%d.%d.0/24", 92+n/256, n%256)
		if !routeClash(sn, bridge) {
			return bridge, sn
		}
	}
	return bridge, fmt.Sprintf("10.%d.%d.0/24", 92+(v%1024)/256, v%256)
}

// routeClash reports a host route (of another device than bridge) that
// overlaps subnet.
func routeClash(subnet, bridge string) bool {
	_, sn, _ := net.ParseCIDR(subnet)
	data, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 8 || f[0] == bridge {
			continue
		}
		dst, err1 := strconv.ParseUint(f[1], 16, 32)
		mask, err2 := strconv.ParseUint(f[7], 16, 32)
		if err1 != nil || err2 != nil || mask == 0 {
			continue
		}
		le := func(v uint64) net.IP { return net.IPv4(byte(v), byte(v>>8), byte(v>>16), byte(v>>24)).To4() }
		r := &net.IPNet{IP: le(dst), Mask: net.IPMask(le(mask))}
		if r.Contains(sn.IP) || sn.Contains(r.IP) {
			return true
		}
	}
	return false
}

// networkArgs are the daemon flags of the network of the daemon on root,
// unless the test gives its own; it registers the clean-up of the bridges
// (the default one and those of user networks left behind) once the
// daemon is gone.
func networkArgs(t testing.TB, root string, extra []string) []string {
	for _, a := range extra {
		if a == "--bridge" || strings.HasPrefix(a, "--bridge=") {
			return nil
		}
	}
	bridge, subnet := testBridge(root)
	t.Cleanup(func() { cleanupBridges(t, root, bridge) })
	return []string{"--bridge", bridge, "--bridge-subnet", subnet}
}

// cleanupBridges deletes the bridge devices of the daemon on root.
func cleanupBridges(t testing.TB, root, bridge string) {
	bridges := []string{bridge}
	recs, _ := filepath.Glob(filepath.Join(root, "network", "networks", "*.json"))
	for _, p := range recs {
		var n struct {
			Bridge string `json:"bridge"`
		}
		if data, err := os.ReadFile(p); err == nil && json.Unmarshal(data, &n) == nil && n.Bridge != "" && n.Bridge != bridge {
			bridges = append(bridges, n.Bridge)
		}
	}
	for _, b := range bridges {
		if _, err := net.InterfaceByName(b); err != nil {
			continue
		}
		if out, err := exec.Command("ip", "link", "delete", b).CombinedOutput(); err != nil {
			t.Errorf("cleanup: delete bridge %s: %v: %s", b, err, out)
		}
	}
}
