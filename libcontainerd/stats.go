package libcontainerd

import (
	"context"
	"fmt"
	"time"

	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	apitypes "github.com/containerd/containerd/api/types"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"

	"github.com/tendhq/tend/libcontainerd/types"
)

// The data of Stats lives in package libcontainerd/types, which a client
// can import without the containerd client; these aliases keep it here.
type (
	// Stats is the resource usage of a task, read from its cgroup.
	Stats = types.Stats
	// NetworkStats are one interface's counters.
	NetworkStats = types.NetworkStats
	// CPUStats is cumulative CPU time.
	CPUStats = types.CPUStats
	// MemoryStats is memory use in bytes.
	MemoryStats = types.MemoryStats
	// PidsStats counts tasks in the cgroup.
	PidsStats = types.PidsStats
	// BlkioStats is block I/O in bytes.
	BlkioStats = types.BlkioStats
)

// statsFromMetric decodes containerd's metric, which carries cgroup v1 or v2
// statistics depending on the host.
func statsFromMetric(m *apitypes.Metric) (*Stats, error) {
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
