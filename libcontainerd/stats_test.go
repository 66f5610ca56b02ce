package libcontainerd

import (
	"reflect"
	"testing"
	"time"

	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestStatsFromMetric(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name string
		data any
		want Stats
	}{
		{
			name: "cgroup v1",
			data: &v1.Metrics{
				CPU: &v1.CPUStat{
					Usage:      &v1.CPUUsage{Total: 300, User: 200, Kernel: 100},
					Throttling: &v1.Throttle{Periods: 9, ThrottledPeriods: 2, ThrottledTime: 50},
				},
				Memory: &v1.MemoryStat{
					TotalCache: 10, TotalRSS: 20,
					Usage: &v1.MemoryEntry{Usage: 30, Max: 40, Limit: 16 << 20},
				},
				MemoryOomControl: &v1.MemoryOomControl{OomKill: 1},
				Pids:             &v1.PidsStat{Current: 3, Limit: 100},
				Blkio: &v1.BlkIOStat{IoServiceBytesRecursive: []*v1.BlkIOEntry{
					{Op: "Read", Value: 7}, {Op: "Write", Value: 8}, {Op: "Read", Value: 1}, {Op: "Total", Value: 16},
				}},
			},
			want: Stats{
				Read:   at,
				CPU:    CPUStats{UsageNanos: 300, UserNanos: 200, SystemNanos: 100, Periods: 9, ThrottledPeriods: 2, ThrottledNanos: 50},
				Memory: MemoryStats{Usage: 30, MaxUsage: 40, Limit: 16 << 20, Cache: 10, RSS: 20, OOMKills: 1},
				Pids:   PidsStats{Current: 3, Limit: 100},
				Blkio:  BlkioStats{ReadBytes: 8, WriteBytes: 8},
			},
		},
		{
			name: "cgroup v2",
			data: &v2.Metrics{
				CPU:          &v2.CPUStat{UsageUsec: 3, UserUsec: 2, SystemUsec: 1, NrPeriods: 4, NrThrottled: 1, ThrottledUsec: 5},
				Memory:       &v2.MemoryStat{Usage: 30, MaxUsage: 40, UsageLimit: 50, File: 10, Anon: 20},
				MemoryEvents: &v2.MemoryEvents{OomKill: 2},
				Pids:         &v2.PidsStat{Current: 1, Limit: 10},
				Io:           &v2.IOStat{Usage: []*v2.IOEntry{{Rbytes: 1, Wbytes: 2}, {Rbytes: 3, Wbytes: 4}}},
			},
			want: Stats{
				Read:   at,
				CPU:    CPUStats{UsageNanos: 3000, UserNanos: 2000, SystemNanos: 1000, Periods: 4, ThrottledPeriods: 1, ThrottledNanos: 5000},
				Memory: MemoryStats{Usage: 30, MaxUsage: 40, Limit: 50, Cache: 10, RSS: 20, OOMKills: 2},
				Pids:   PidsStats{Current: 1, Limit: 10},
				Blkio:  BlkioStats{ReadBytes: 4, WriteBytes: 6},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			anyData, err := typeurl.MarshalAnyToProto(tc.data)
			if err != nil {
				t.Fatal(err)
			}
			got, err := statsFromMetric(&types.Metric{Timestamp: timestamppb.New(at), Data: anyData})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Fatalf("stats:\n got %+v\nwant %+v", *got, tc.want)
			}
		})
	}
	if _, err := statsFromMetric(&types.Metric{}); !errdefs.IsNotFound(err) {
		t.Fatalf("empty metric: got %v, want a NotFound error", err)
	}
}
