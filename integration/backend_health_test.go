package integration

import (
	"testing"
	"time"

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
