package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/backend"
)

// countingScript exits with code 1 for its first n runs (counted in a file
// of the container's writable image snapshot), then runs `then`.
func countingScript(n int, then string) []string {
	return []string{"sh", "-c", `c=$(cat /runs 2>/dev/null || echo 0); c=$((c+1)); echo $c > /runs; echo run $c; if [ $c -le ` +
		itoa(n) + ` ]; then exit 1; fi; ` + then}
}

func itoa(n int) string {
	const digits = "0123456789"
	if n < 10 {
		return digits[n : n+1]
	}
	return itoa(n/10) + digits[n%10:n%10+1]
}

func TestBackendOnFailureRunsExactlyThreeTimes(t *testing.T) {
	env := newEngineEnv(t, nil)
	c := env.run(backend.CreateOptions{Cmd: []string{"sh", "-c", "echo ran; exit 3"}, Restart: backend.RestartPolicy{Name: "on-failure", MaximumRetryCount: 2}})
	r := env.waitFor(c.ID, 30*time.Second, "exited after the retries", func(c *backend.Container) bool {
		return c.State == backend.StateExited
	})
	if r.RestartCount != 2 || r.ExitCode != 3 {
		t.Errorf("record: restarts %d exit %d; want 2 and 3", r.RestartCount, r.ExitCode)
	}
	if n := strings.Count(env.logText(c.ID), "ran\n"); n != 3 {
		t.Errorf("ran %d times, want 3", n)
	}
	if n := len(env.evs.of(c.ID, "die")); n != 3 {
		t.Errorf("%d die events, want 3", n)
	}
	restarts := env.evs.of(c.ID, "restart")
	if len(restarts) != 2 || restarts[1].Attributes["restart_count"] != "2" || restarts[1].Attributes["reason"] != "policy" || restarts[1].Attributes["next_restart_at"] == "" {
		t.Errorf("restart events %+v", restarts)
	}
	// A clean exit is no failure.
	c2 := env.run(backend.CreateOptions{Cmd: []string{"true"}, Restart: backend.RestartPolicy{Name: "on-failure"}})
	if code, err := env.e.Wait(testCtx(t), c2.ID, backend.WaitNotRunning); err != nil || code != 0 {
		t.Fatalf("Wait: %d %v", code, err)
	}
	if r := env.inspect(c2.ID); r.RestartCount != 0 {
		t.Errorf("clean exit restarted %d times", r.RestartCount)
	}
}

func TestBackendAlwaysRestartsWithGrowingGaps(t *testing.T) {
	env := newEngineEnv(t, nil)
	c := env.run(backend.CreateOptions{Cmd: []string{"true"}, Restart: backend.RestartPolicy{Name: "always"}})
	env.waitFor(c.ID, 30*time.Second, "6 restarts", func(c *backend.Container) bool { return c.RestartCount >= 6 })
	if err := env.e.Stop(testCtx(t), c.ID, nil); err != nil {
		t.Fatal(err)
	}
	dies, starts := env.evs.of(c.ID, "die"), env.evs.of(c.ID, "start")
	if len(dies) < 5 || len(starts) < 6 {
		t.Fatalf("%d dies, %d starts", len(dies), len(starts))
	}
	want := 100 * time.Millisecond
	for i := 0; i < 5; i++ {
		gap := starts[i+1].Time.Sub(dies[i].Time)
		// The gap also holds a new shim and runc's create and start,
		// seconds on a loaded machine: only its lower bound is tight.
		if gap < want || gap > want+10*time.Second {
			t.Errorf("restart %d after %v, want about %v", i+1, gap, want)
		}
		want *= 2
	}
	if r := env.inspect(c.ID); r.State != backend.StateExited || !r.ManuallyStopped {
		t.Errorf("after Stop: %s manual %v", r.State, r.ManuallyStopped)
	}
}

func TestBackendBackoffResetsAfterLongRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a container for 12s")
	}
	env := newEngineEnv(t, nil)
	c := env.run(backend.CreateOptions{Image: testEnv.ImageRef, Cmd: countingScript(3, "sleep 12; exit 1"), Restart: backend.RestartPolicy{Name: "always"}})
	env.waitFor(c.ID, 60*time.Second, "the restart after the long run", func(c *backend.Container) bool { return c.RestartCount >= 4 })
	if err := env.e.Stop(testCtx(t), c.ID, nil); err != nil {
		t.Fatal(err)
	}
	restarts := env.evs.of(c.ID, "restart")
	var delays []time.Duration
	for _, ev := range restarts[:4] {
		at, err := time.Parse(time.RFC3339Nano, ev.Attributes["next_restart_at"])
		if err != nil {
			t.Fatal(err)
		}
		delays = append(delays, at.Sub(ev.Time).Round(time.Millisecond))
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 100 * time.Millisecond}
	for i := range want {
		if delays[i] != want[i] {
			t.Errorf("restart delays %v, want %v (reset after the 12s run)", delays, want)
			break
		}
	}
}

func TestBackendUnlessStoppedAndAlwaysAcrossEngineRestart(t *testing.T) {
	env := newEngineEnv(t, nil)
	ctx := testCtx(t)
	us := env.run(backend.CreateOptions{Name: "us", Cmd: []string{"sleep", "1000"}, Restart: backend.RestartPolicy{Name: "unless-stopped"}})
	al := env.run(backend.CreateOptions{Name: "al", Cmd: []string{"sleep", "1000"}, Restart: backend.RestartPolicy{Name: "always"}})
	zero := time.Duration(0)
	for _, c := range []*backend.Container{us, al} {
		if err := env.e.Stop(ctx, c.ID, &zero); err != nil {
			t.Fatal(err)
		}
	}
	env.shutdown()
	env.open()
	if r := env.inspect("us"); r.State != backend.StateExited || !r.ManuallyStopped {
		t.Errorf("unless-stopped after a manual stop and an engine restart: %s", r.State)
	}
	r := env.waitFor("al", 20*time.Second, "always to run again", func(c *backend.Container) bool { return c.State == backend.StateRunning })
	if r.Pid == 0 || r.Pid == al.Pid {
		t.Errorf("always container pid %d (before %d)", r.Pid, al.Pid)
	}
	_ = context.Background
}
