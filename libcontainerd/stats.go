package libcontainerd

import (
	"context"
	"fmt"
	"time"

	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
)

// Stats is the resource usage of a task, read from its cgroup. The same
// fields are filled from cgroup v1 and v2; a field the kernel does not report
// stays zero.
type Stats struct {
	Read   time.Time   `json:"read"`
	CPU    CPUStats    `json:"cpu"`
	Memory MemoryStats `json:"memory"`
	Pids   PidsStats   `json:"pids"`
	Blkio  BlkioStats  `json:"blkio"`
	// Networks are the counters of the task's network interfaces but lo,
	// by name. The cgroup has none: the engine reads them from the task's
	// network namespace; empty in the host's namespace.
	Networks map[string]NetworkStats `json:"networks,omitempty"`
}

// NetworkStats are one interface's counters, as /proc/net/dev gives them.
type NetworkStats struct {
	RxBytes   uint64 `json:"rx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	RxErrors  uint64 `json:"rx_errors"`
	RxDropped uint64 `json:"rx_dropped"`
	TxBytes   uint64 `json:"tx_bytes"`
	TxPackets uint64 `json:"tx_packets"`
	TxErrors  uint64 `json:"tx_errors"`
	TxDropped uint64 `json:"tx_dropped"`
}

// CPUStats is cumulative CPU time.
type CPUStats struct {
	UsageNanos       uint64 `json:"usage_nanos"`
	UserNanos        uint64 `json:"user_nanos"`
	SystemNanos      uint64 `json:"system_nanos"`
	Periods          uint64 `json:"periods"`
	ThrottledPeriods uint64 `json:"throttled_periods"`
	ThrottledNanos   uint64 `json:"throttled_nanos"`
}

// MemoryStats is memory use in bytes. Limit is the cgroup's limit (a huge
// number when unlimited).
type MemoryStats struct {
	Usage    uint64 `json:"usage"`
	MaxUsage uint64 `json:"max_usage"`
	Limit    uint64 `json:"limit"`
	Cache    uint64 `json:"cache"`
	RSS      uint64 `json:"rss"`
	OOMKills uint64 `json:"oom_kills"`
}

// PidsStats counts tasks in the cgroup.
type PidsStats struct {
	Current uint64 `json:"current"`
	Limit   uint64 `json:"limit"`
}

// BlkioStats is block I/O in bytes.
type BlkioStats struct {
	ReadBytes  uint64 `json:"read_bytes"`
	WriteBytes uint64 `json:"write_bytes"`
}

// statsFromMetric decodes containerd's metric, which carries cgroup v1 or v2
// statistics depending on the host.
func statsFromMetric(m *types.Metric) (*Stats, error) {
	if m == nil || m.Data == nil {
		return nil, fmt.Errorf("containerd returned no metrics: %w", errdefs.ErrNotFound)
	}
	data, err := typeurl.UnmarshalAny(m.Data)
	if err != nil {
		return nil, fmt.Errorf("decode task metrics of type %q: %w", m.Data.GetTypeUrl(), err)
	}
	s := &Stats{Read: time.Now()}
	if m.Timestamp != nil {
		s.Read = m.Timestamp.AsTime()
	}
	switch d := data.(type) {
	case *v1.Metrics:
		fillV1(s, d)
	case *v2.Metrics:
		fillV2(s, d)
	default:
		return nil, fmt.Errorf("task metrics of unknown type %T: %w", data, errdefs.ErrNotImplemented)
	}
	return s, nil
}

func fillV1(s *Stats, m *v1.Metrics) {
	if c := m.GetCPU(); c != nil {
		s.CPU.UsageNanos = c.GetUsage().GetTotal()
		s.CPU.UserNanos = c.GetUsage().GetUser()
		s.CPU.SystemNanos = c.GetUsage().GetKernel()
		s.CPU.Periods = c.GetThrottling().GetPeriods()
		s.CPU.ThrottledPeriods = c.GetThrottling().GetThrottledPeriods()
		s.CPU.ThrottledNanos = c.GetThrottling().GetThrottledTime()
	}
	if mem := m.GetMemory(); mem != nil {
		s.Memory.Usage = mem.GetUsage().GetUsage()
		s.Memory.MaxUsage = mem.GetUsage().GetMax()
		s.Memory.Limit = mem.GetUsage().GetLimit()
		s.Memory.Cache = mem.GetTotalCache()
		s.Memory.RSS = mem.GetTotalRSS()
	}
	s.Memory.OOMKills = m.GetMemoryOomControl().GetOomKill()
	s.Pids.Current = m.GetPids().GetCurrent()
	s.Pids.Limit = m.GetPids().GetLimit()
	for _, e := range m.GetBlkio().GetIoServiceBytesRecursive() {
		switch e.GetOp() {
		case "Read", "read":
			s.Blkio.ReadBytes += e.GetValue()
		case "Write", "write":
			s.Blkio.WriteBytes += e.GetValue()
		}
	}
}

func fillV2(s *Stats, m *v2.Metrics) {
	if c := m.GetCPU(); c != nil {
		s.CPU.UsageNanos = c.GetUsageUsec() * 1000
		s.CPU.UserNanos = c.GetUserUsec() * 1000
		s.CPU.SystemNanos = c.GetSystemUsec() * 1000
		s.CPU.Periods = c.GetNrPeriods()
		s.CPU.ThrottledPeriods = c.GetNrThrottled()
		s.CPU.ThrottledNanos = c.GetThrottledUsec() * 1000
	}
	if mem := m.GetMemory(); mem != nil {
		s.Memory.Usage = mem.GetUsage()
		s.Memory.MaxUsage = mem.GetMaxUsage()
		s.Memory.Limit = mem.GetUsageLimit()
		s.Memory.Cache = mem.GetFile()
		s.Memory.RSS = mem.GetAnon()
	}
	s.Memory.OOMKills = m.GetMemoryEvents().GetOomKill()
	s.Pids.Current = m.GetPids().GetCurrent()
	s.Pids.Limit = m.GetPids().GetLimit()
	for _, e := range m.GetIo().GetUsage() {
		s.Blkio.ReadBytes += e.GetRbytes()
		s.Blkio.WriteBytes += e.GetWbytes()
	}
}

func (c *client) Stats(ctx context.Context, id string) (*Stats, error) {
	ctx, t, err := c.taskOf(ctx, id)
	if err != nil {
		return nil, err
	}
	m, err := t.Metrics(ctx)
	if err != nil {
		return nil, fmt.Errorf("stats of %s: %w", id, err)
	}
	return statsFromMetric(m)
}
