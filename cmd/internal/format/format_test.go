package format

import (
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/cmd/internal/api"
	"github.com/tendhq/tend/healthcheck"
)

func TestHumanDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "Less than a second"},
		{999 * time.Millisecond, "Less than a second"},
		{time.Second, "1 second"},
		{2 * time.Second, "2 seconds"},
		{59 * time.Second, "59 seconds"},
		{60 * time.Second, "About a minute"},
		{119 * time.Second, "About a minute"},
		{2 * time.Minute, "2 minutes"},
		{59 * time.Minute, "59 minutes"},
		{60 * time.Minute, "About an hour"},
		{3 * time.Hour, "3 hours"},
		{47 * time.Hour, "47 hours"},
		{48 * time.Hour, "2 days"},
		{15 * 24 * time.Hour, "2 weeks"},
		{90 * 24 * time.Hour, "3 months"},
		{3 * 365 * 24 * time.Hour, "3 years"},
	} {
		if got := HumanDuration(tc.d); got != tc.want {
			t.Errorf("HumanDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestSizes(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0B"},
		{999, "999B"},
		{1000, "1kB"},
		{1234567, "1.235MB"},
		{4 << 30, "4.295GB"},
	} {
		if got := HumanSize(tc.n); got != tc.want {
			t.Errorf("HumanSize(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
	for _, tc := range []struct {
		n    uint64
		want string
	}{
		{0, "0B"},
		{1023, "1023B"},
		{1024, "1KiB"},
		{1536 << 10, "1.5MiB"},
		{16 << 20, "16MiB"},
		{1 << 30, "1GiB"},
	} {
		if got := BytesSize(tc.n); got != tc.want {
			t.Errorf("BytesSize(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestParseMemory(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"1024", 1024, false},
		{"16m", 16 << 20, false},
		{"16M", 16 << 20, false},
		{"16mb", 16 << 20, false},
		{"512KiB", 512 << 10, false},
		{"1g", 1 << 30, false},
		{"1.5g", 3 << 29, false},
		{"2t", 2 << 40, false},
		{"10b", 10, false},
		{"", 0, true},
		{"m", 0, true},
		{"-1m", 0, true},
		{"16x", 0, true},
		{"1e3", 0, true},
		{"99999999p", 0, true},
	} {
		got, err := ParseMemory(tc.in)
		if tc.wantErr {
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("ParseMemory(%q) = %d, %v; want an invalid-argument error", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestStatus(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	health := &healthcheck.Config{Test: []string{"CMD-SHELL", "true"}}
	for _, tc := range []struct {
		name string
		c    api.Container
		want string
	}{
		{"created", api.Container{State: api.StateCreated}, "Created"},
		{"up", api.Container{State: api.StateRunning, StartedAt: now.Add(-3 * time.Minute)}, "Up 3 minutes"},
		{"healthy", api.Container{State: api.StateRunning, StartedAt: now.Add(-3 * time.Minute),
			Config: api.CreateOptions{Health: health}, Health: &healthcheck.State{Status: "healthy"}}, "Up 3 minutes (healthy)"},
		{"starting without state", api.Container{State: api.StateRunning, StartedAt: now.Add(-2 * time.Second),
			Config: api.CreateOptions{Health: health}}, "Up 2 seconds (health: starting)"},
		{"starting", api.Container{State: api.StateRunning, StartedAt: now.Add(-2 * time.Second),
			Config: api.CreateOptions{Health: health}, Health: &healthcheck.State{Status: "starting"}}, "Up 2 seconds (health: starting)"},
		{"unhealthy", api.Container{State: api.StateRunning, StartedAt: now.Add(-time.Hour),
			Config: api.CreateOptions{Health: health}, Health: &healthcheck.State{Status: "unhealthy"}}, "Up About an hour (unhealthy)"},
		{"healthcheck NONE", api.Container{State: api.StateRunning, StartedAt: now.Add(-2 * time.Second),
			Config: api.CreateOptions{Health: &healthcheck.Config{Test: []string{"NONE"}}}}, "Up 2 seconds"},
		{"paused", api.Container{State: api.StatePaused, StartedAt: now.Add(-90 * time.Second)}, "Up About a minute (Paused)"},
		{"restarting", api.Container{State: api.StateRestarting, ExitCode: 1, FinishedAt: now.Add(-2 * time.Second)}, "Restarting (1) 2 seconds ago"},
		{"exited", api.Container{State: api.StateExited, ExitCode: 137, StartedAt: now.Add(-time.Minute), FinishedAt: now.Add(-5 * time.Second)}, "Exited (137) 5 seconds ago"},
		{"exited never started", api.Container{State: api.StateExited}, "Created"},
		{"dead", api.Container{State: api.StateDead}, "Dead"},
		{"removing", api.Container{State: api.StateRemoving}, "Removal In Progress"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Status(&tc.c, now); got != tc.want {
				t.Errorf("Status = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCommandAndIDs(t *testing.T) {
	for _, tc := range []struct {
		argv  []string
		trunc bool
		want  string
	}{
		{[]string{"sleep", "10"}, true, `"sleep 10"`},
		// docker: words with a space in single quotes, then cut at 20.
		{[]string{"sh", "-c", "exit 7"}, true, `"sh -c 'exit 7'"`},
		{[]string{"sh", "-c", "while true; do echo hi; done"}, true, `"sh -c 'while true; …"`},
		{[]string{"sh", "-c", "while true; do echo hi; done"}, false, `"sh -c 'while true; do echo hi; done'"`},
		{nil, true, `""`},
	} {
		if got := Command(tc.argv, tc.trunc); got != tc.want {
			t.Errorf("Command(%q, %v) = %s, want %s", tc.argv, tc.trunc, got, tc.want)
		}
	}
	if got := ShortID("0123456789abcdef0123"); got != "0123456789ab" {
		t.Errorf("ShortID = %q", got)
	}
	if got := ShortID("abc"); got != "abc" {
		t.Errorf("ShortID short = %q", got)
	}
	if got := Truncate("héllo wörld", 5); got != "héll…" {
		t.Errorf("Truncate = %q", got)
	}
}
