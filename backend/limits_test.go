package backend

import (
	"context"
	"math"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/healthcheck"
)

func TestCheckResources(t *testing.T) {
	for _, tc := range []struct {
		r   Resources
		cpu int
		msg string // "" ok
	}{
		{Resources{}, 4, ""},
		{Resources{MemoryBytes: MinMemory, CPUs: 4, PidsLimit: MaxPids}, 4, ""},
		{Resources{MemoryBytes: 1}, 4, "minimum is 6MiB"},
		{Resources{MemoryBytes: MinMemory - 1}, 4, "minimum is 6MiB"},
		{Resources{MemoryBytes: -1}, 4, "must not be negative"},
		{Resources{MemoryBytes: math.MaxInt64}, 4, "maximum is 1PiB"},
		{Resources{CPUs: math.NaN()}, 4, "want a number of CPUs"},
		{Resources{CPUs: math.Inf(1)}, 4, "want a number of CPUs"},
		{Resources{CPUs: -0.5}, 4, "must not be negative"},
		{Resources{CPUs: 0.001}, 4, "minimum is 0.01"},
		{Resources{CPUs: 4.5}, 4, "range of CPUs is from 0.01 to 4.00, as there are only 4 CPUs available"},
		{Resources{CPUs: 1e300}, 0, "more CPUs than any host"},
		{Resources{PidsLimit: -1}, 4, "must not be negative"},
		{Resources{PidsLimit: MaxPids + 1}, 4, "maximum is 4194304"},
	} {
		err := CheckResources(tc.r, tc.cpu)
		if tc.msg == "" {
			if err != nil {
				t.Errorf("%+v: %v", tc.r, err)
			}
			continue
		}
		if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%+v: %v, want invalid argument saying %q", tc.r, err, tc.msg)
		}
	}
}

// TestCreateChecksRanges: Create refuses what an embedder could pass
// around the API's checks, before anything is created.
func TestCreateChecksRanges(t *testing.T) {
	env := newFakeEnv(t)
	hc := func(f func(*healthcheck.Config)) *healthcheck.Config {
		h := &healthcheck.Config{Test: []string{healthcheck.TestCmdShell, "true"}}
		f(h)
		return h
	}
	for _, tc := range []struct {
		name string
		o    CreateOptions
		msg  string
	}{
		{"empty label key", CreateOptions{Labels: map[string]string{"": "v"}}, "empty key"},
		{"empty command", CreateOptions{Cmd: []string{"", "x"}}, "first word is empty"},
		{"memory below the minimum", CreateOptions{Resources: Resources{MemoryBytes: 4096}}, "minimum is 6MiB"},
		{"memory overflow", CreateOptions{Resources: Resources{MemoryBytes: math.MaxInt64}}, "maximum is 1PiB"},
		{"cpus NaN", CreateOptions{Resources: Resources{CPUs: math.NaN()}}, "want a number of CPUs"},
		{"cpus Inf", CreateOptions{Resources: Resources{CPUs: math.Inf(1)}}, "want a number of CPUs"},
		{"cpus negative", CreateOptions{Resources: Resources{CPUs: -1}}, "must not be negative"},
		{"cpus over the host", CreateOptions{Resources: Resources{CPUs: 1e300}}, "as there are only"},
		{"pids over the maximum", CreateOptions{Resources: Resources{PidsLimit: MaxPids + 1}}, "maximum is 4194304"},
		{"retries negative", CreateOptions{Restart: RestartPolicy{Name: RestartOnFailure, MaximumRetryCount: -1}}, "maximum retry count"},
		{"retries overflow", CreateOptions{Restart: RestartPolicy{Name: RestartOnFailure, MaximumRetryCount: math.MaxInt32 + 1}}, "maximum retry count"},
		{"health interval overflow", CreateOptions{Health: hc(func(h *healthcheck.Config) { h.Interval = math.MaxInt64 })}, "health check interval"},
		{"health timeout negative", CreateOptions{Health: hc(func(h *healthcheck.Config) { h.Timeout = -time.Second })}, "health check timeout"},
		{"health start period overflow", CreateOptions{Health: hc(func(h *healthcheck.Config) { h.StartPeriod = MaxHealthDuration + 1 })}, "start period"},
		{"health start interval overflow", CreateOptions{Health: hc(func(h *healthcheck.Config) { h.StartInterval = math.MaxInt64 })}, "start interval"},
		{"health retries overflow", CreateOptions{Health: hc(func(h *healthcheck.Config) { h.Retries = math.MaxInt32 + 1 })}, "retries"},
	} {
		o := tc.o
		o.Rootfs = env.root
		if o.Cmd == nil {
			o.Cmd = []string{"/bin/true"}
		}
		_, err := env.e.Create(context.Background(), o)
		if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want invalid argument saying %q", tc.name, err, tc.msg)
		}
	}
	if n := len(env.fc.ctrs); n != 0 {
		t.Errorf("%d containers created in containerd, want none", n)
	}
	if cs, err := env.e.List(context.Background(), ListOptions{All: true}); err != nil || len(cs) != 0 {
		t.Errorf("List = %d records, %v; want none", len(cs), err)
	}
}

// TestStopRestartKillCheckRanges: a timeout that is negative or
// overflows, or a signal out of range, is refused and the container is
// left running (an overflowed timeout once became an immediate SIGKILL).
func TestStopRestartKillCheckRanges(t *testing.T) {
	env := newFakeEnv(t)
	c := env.create(CreateOptions{})
	ctx := context.Background()
	if err := env.e.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	env.expectStart(c.ID)
	for _, d := range []time.Duration{-time.Second, MaxTimeoutSeconds*time.Second + 1, math.MaxInt64} {
		if err := env.e.Stop(ctx, c.ID, &d); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "2147483647") {
			t.Errorf("Stop(%v): %v, want invalid argument naming the limit", d, err)
		}
		if err := env.e.Restart(ctx, c.ID, &d); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Restart(%v): %v, want invalid argument", d, err)
		}
	}
	for _, sig := range []syscall.Signal{0, -9, MaxSignal + 1} {
		if err := env.e.Kill(ctx, c.ID, sig); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Kill(%d): %v, want invalid argument", sig, err)
		}
	}
	if got := env.inspect(c.ID); got.State != StateRunning {
		t.Errorf("after the refused calls the container is %s, want running", got.State)
	}
	if len(env.fc.signals) != 0 {
		t.Errorf("signals sent: %v, want none", env.fc.signals)
	}
	max := MaxTimeoutSeconds * time.Second
	if err := CheckStopTimeout(&max); err != nil {
		t.Errorf("CheckStopTimeout(max): %v", err)
	}
}
