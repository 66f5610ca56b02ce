package integration

import (
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/log"
	"github.com/sirupsen/logrus"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/healthcheck"
)

func TestBackendUnhealthyRestartCountsTowardOnFailure(t *testing.T) {
	env := newEngineEnv(t, nil)
	hc := &healthcheck.Config{Test: []string{"CMD-SHELL", "exit 1"}, Interval: 200 * time.Millisecond, Timeout: 5 * time.Second,
		Retries: 2, OnUnhealthy: healthcheck.ActionRestart}
	c := env.run(backend.CreateOptions{Cmd: []string{"sleep", "1000"}, Health: hc, Restart: backend.RestartPolicy{Name: "on-failure", MaximumRetryCount: 1}})
	// Unhealthy -> killed -> restarted (1 of 1) -> unhealthy -> killed -> stays down.
	r := env.waitFor(c.ID, 60*time.Second, "two unhealthy kills", func(c *backend.Container) bool {
		return c.State == backend.StateExited
	})
	if r.RestartCount != 1 || r.ExitReason != "unhealthy" || r.ExitCode != 137 || r.Health == nil || r.Health.Status != healthcheck.StatusUnhealthy {
		t.Errorf("record: restarts %d reason %q exit %d health %+v", r.RestartCount, r.ExitReason, r.ExitCode, r.Health)
	}
	restarts := env.evs.of(c.ID, "restart")
	if len(restarts) != 1 || restarts[0].Attributes["reason"] != "unhealthy" {
		t.Errorf("restart events %+v; want one with reason unhealthy", restarts)
	}
	var statuses []string
	for _, ev := range env.evs.of(c.ID, "health_status") {
		statuses = append(statuses, ev.Attributes["health_status"])
	}
	if len(statuses) < 2 || statuses[len(statuses)-1] != healthcheck.StatusUnhealthy {
		t.Errorf("health_status events %v", statuses)
	}
}

func TestBackendHealthSurvivesEngineRestart(t *testing.T) {
	env := newEngineEnv(t, nil)
	hc := &healthcheck.Config{Test: []string{"CMD", "true"}, Interval: 200 * time.Millisecond, Retries: 1}
	c := env.run(backend.CreateOptions{Cmd: []string{"sleep", "1000"}, Health: hc})
	env.waitFor(c.ID, 30*time.Second, "healthy", func(c *backend.Container) bool {
		return c.Health != nil && c.Health.Status == healthcheck.StatusHealthy
	})
	env.shutdown()
	env.open()
	r := env.inspect(c.ID)
	if r.Health == nil || r.Health.Status != healthcheck.StatusHealthy || len(r.Health.Log) == 0 || r.Pid != c.Pid {
		t.Fatalf("after live-restore: pid %d health %+v; want the stored healthy status and pid %d", r.Pid, r.Health, c.Pid)
	}
	n := len(r.Health.Log)
	env.waitFor(c.ID, 30*time.Second, "probes to resume", func(c *backend.Container) bool {
		return c.Health != nil && c.Health.Log[len(c.Health.Log)-1].End.After(r.Health.Log[n-1].End)
	})
	if got := env.evs.of(c.ID, "health_status"); len(got) != 0 {
		t.Errorf("status events after restore %+v; the status was resumed, not reset", got)
	}
}

// probeWarnings collects the health check warnings logged while it is
// installed.
type probeWarnings struct {
	mu   sync.Mutex
	msgs []string
}

func (h *probeWarnings) Levels() []logrus.Level {
	return []logrus.Level{logrus.WarnLevel, logrus.ErrorLevel}
}

func (h *probeWarnings) Fire(e *logrus.Entry) error {
	if strings.Contains(e.Message, "health check") {
		h.mu.Lock()
		h.msgs = append(h.msgs, fmt.Sprintf("%s: %v", e.Message, e.Data["error"]))
		h.mu.Unlock()
	}
	return nil
}

// TestBackendForceRemoveProbedQuietly: rm -f, stop and kill of containers
// probed every 20ms log no failed probe ("health check failed to start ...
// cannot exec into it"): their probes are stopped before the task is.
func TestBackendForceRemoveProbedQuietly(t *testing.T) {
	env := newEngineEnv(t, nil)
	ctx := testCtx(t)
	hooks := log.L.Logger.ReplaceHooks(make(logrus.LevelHooks))
	defer log.L.Logger.ReplaceHooks(hooks)
	for _, h := range hooks {
		for _, hook := range h {
			log.L.Logger.AddHook(hook)
		}
	}
	warns := &probeWarnings{}
	log.L.Logger.AddHook(warns)
	hc := &healthcheck.Config{Test: []string{"CMD", "true"}, Interval: 20 * time.Millisecond, Timeout: 5 * time.Second}
	for i := range 6 {
		c := env.run(backend.CreateOptions{Cmd: []string{"sleep", "1000"}, Health: hc})
		env.waitFor(c.ID, 30*time.Second, "probed", func(c *backend.Container) bool {
			return c.Health != nil && len(c.Health.Log) >= 2
		})
		var err error
		switch i % 3 {
		case 0:
			err = env.e.Remove(ctx, c.ID, true)
		case 1:
			zero := time.Duration(0)
			err = env.e.Stop(ctx, c.ID, &zero)
		case 2:
			err = env.e.Kill(ctx, c.ID, syscall.SIGKILL)
			if err == nil {
				_, err = env.e.Wait(ctx, c.ID, backend.WaitNotRunning)
			}
		}
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	warns.mu.Lock()
	defer warns.mu.Unlock()
	if len(warns.msgs) > 0 {
		t.Errorf("health check warnings while ending probed containers: %q", warns.msgs)
	}
}

// TestBackendExitUnderProbeIsNoFailure: a container that exits while its
// probe runs (tend-init goes, and the probe's connection with it; or the
// runtime kills the probe's exec with the container) records no failed probe: the probe was cut by the exit, not failed, as Docker's
// monitor, stopped with the container, drops it.
func TestBackendExitUnderProbeIsNoFailure(t *testing.T) {
	env := newEngineEnv(t, nil)
	ctx := testCtx(t)
	// The probe marks that it runs, then outlives the command, which ends
	// once it sees the mark.
	hc := &healthcheck.Config{Test: []string{"CMD-SHELL", "touch /tmp/probing; exec sleep 1000"}, Interval: 50 * time.Millisecond,
		Timeout: time.Minute, Retries: 1}
	off := false
	for i := range 6 {
		// Through tend-init (its connection closes under the probe), and
		// as a containerd exec (killed with the container: 137).
		var init *bool
		if i%2 == 1 {
			init = &off
		}
		c := env.run(backend.CreateOptions{Cmd: []string{"sh", "-c", "until [ -e /tmp/probing ]; do sleep 0.02; done"}, Health: hc, Init: init})
		if _, err := env.e.Wait(ctx, c.ID, backend.WaitNotRunning); err != nil {
			t.Fatal(err)
		}
		r, err := env.e.Inspect(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if h := r.Health; h != nil && (h.FailingStreak != 0 || len(h.Log) != 0 || h.Status != healthcheck.StatusStarting) {
			t.Fatalf("round %d (init %v): health after an exit under a running probe: %+v; want starting, no failure, no result", i, init == nil, h)
		}
	}
}
