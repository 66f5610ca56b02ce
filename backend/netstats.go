package backend

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/tendhq/tend/libcontainerd"
)

// taskNetworks reads the interface counters of the network namespace pid
// lives in, as docker's stats reports them for a container: every interface
// but lo. A task in the engine's own namespace (--network host) has none of
// its own: nil, as docker shows no networks for it.
func taskNetworks(pid uint32) (map[string]libcontainerd.NetworkStats, error) {
	if pid == 0 {
		return nil, nil
	}
	own, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return nil, err
	}
	theirs, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return nil, err
	}
	if own == theirs {
		return nil, nil
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseNetDev(f)
}

// parseNetDev parses /proc/net/dev: two heading lines, then per interface
// "name: rx bytes packets errs drop fifo frame compressed multicast tx bytes
// packets errs drop fifo colls carrier compressed". lo is left out.
func parseNetDev(r io.Reader) (map[string]libcontainerd.NetworkStats, error) {
	out := map[string]libcontainerd.NetworkStats{}
	sc := bufio.NewScanner(r)
	for n := 0; sc.Scan(); n++ {
		if n < 2 {
			continue
		}
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			return nil, fmt.Errorf("/proc/net/dev line %d: no interface name in %q", n+1, sc.Text())
		}
		name = strings.TrimSpace(name)
		f := strings.Fields(rest)
		if len(f) < 16 {
			return nil, fmt.Errorf("/proc/net/dev line %d: %d counters, want 16", n+1, len(f))
		}
		var v [16]uint64
		for i := range v {
			x, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("/proc/net/dev line %d: %w", n+1, err)
			}
			v[i] = x
		}
		if name == "lo" {
			continue
		}
		out[name] = libcontainerd.NetworkStats{
			RxBytes: v[0], RxPackets: v[1], RxErrors: v[2], RxDropped: v[3],
			TxBytes: v[8], TxPackets: v[9], TxErrors: v[10], TxDropped: v[11],
		}
	}
	return out, sc.Err()
}
