package cli

import (
	"testing"
	"time"

	"github.com/tendhq/tend/cmd/internal/api"
	libcontainerdtypes "github.com/tendhq/tend/libcontainerd/types"
)

func TestStartErrorCode(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want int
	}{
		{`failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "nope": executable file not found in $PATH: unknown`, 127},
		{`exec: "/bin/nope": stat /bin/nope: no such file or directory`, 127},
		{`unable to start container process: exec: "/etc/passwd": permission denied`, 126},
		{`exec /etc: is a directory`, 126},
		{`No such container: x`, 125},
		{`cannot connect to the engine`, 125},
	} {
		if got := startErrorCode(tc.msg); got != tc.want {
			t.Errorf("startErrorCode(%q) = %d, want %d", tc.msg, got, tc.want)
		}
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{"", time.Time{}, false},
		{"10m", now.Add(-10 * time.Minute), false},
		{"0s", now, false},
		{"2026-01-01T00:00:00Z", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{"1700000000", time.Unix(1700000000, 0), false},
		{"1700000000.5", time.Unix(1700000000, 5e8), false},
		{"-5m", time.Time{}, true},
		{"yesterday", time.Time{}, true},
	} {
		got, err := ParseSince(tc.in, now)
		if (err != nil) != tc.wantErr || !got.Equal(tc.want) {
			t.Errorf("ParseSince(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestFormatEvent(t *testing.T) {
	e := api.Event{
		Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Type: "die", ContainerID: "abc", Name: "web",
		Attributes: map[string]string{"exitCode": "1", "image": "busybox", "name": "web", "reason": "policy"},
	}
	want := "2026-01-02T03:04:05.000000006Z container die abc (exitCode=1, image=busybox, name=web, reason=policy)"
	if got := FormatEvent(e); got != want {
		t.Errorf("FormatEvent = %q, want %q", got, want)
	}
}

func TestStatsRow(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	prev := &libcontainerdtypes.Stats{Read: t0, CPU: libcontainerdtypes.CPUStats{UsageNanos: 1e9}}
	cur := &libcontainerdtypes.Stats{
		Read: t0.Add(time.Second), CPU: libcontainerdtypes.CPUStats{UsageNanos: 1.5e9},
		Memory: libcontainerdtypes.MemoryStats{Usage: 30 << 20, Cache: 10 << 20, Limit: 64 << 20},
		Pids:   libcontainerdtypes.PidsStats{Current: 3},
	}
	for _, tc := range []struct {
		name             string
		prev             *libcontainerdtypes.Stats
		limit            uint64
		host             uint64
		cpu, memPerc     float64
		wantLimit, usage uint64
	}{
		{"limited", prev, 64 << 20, 1 << 30, 50, 31.25, 64 << 20, 20 << 20},
		{"first sample", nil, 64 << 20, 1 << 30, 0, 31.25, 64 << 20, 20 << 20},
		{"unlimited shows host memory", prev, 1 << 63, 80 << 20, 50, 25, 80 << 20, 20 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := *cur
			c.Memory.Limit = tc.limit
			r := StatsRow("0123456789abcdef", "web", tc.prev, &c, tc.host)
			if r.ID != "0123456789ab" || r.CPUPerc != tc.cpu || r.MemPerc != tc.memPerc || r.MemLimit != tc.wantLimit || r.MemUsage != tc.usage || r.Pids != 3 {
				t.Errorf("StatsRow = %+v", r)
			}
		})
	}
}

func TestSplitRef(t *testing.T) {
	for _, tc := range []struct{ in, repo, tag string }{
		{"docker.io/library/busybox:latest", "docker.io/library/busybox", "latest"},
		{"localhost:5000/app", "localhost:5000/app", "<none>"},
		{"localhost:5000/app:v1@sha256:abc", "localhost:5000/app", "v1"},
	} {
		if repo, tag := splitRef(tc.in); repo != tc.repo || tag != tc.tag {
			t.Errorf("splitRef(%q) = %q, %q", tc.in, repo, tag)
		}
	}
}
