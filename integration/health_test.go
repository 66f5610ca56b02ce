package integration

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/healthcheck"
	"github.com/tendhq/tend/internal/testutil"
)

// Health probe tests on the real containerd, through the backend.
// Intervals are short so the suite stays fast; every test runs its own
// Engine (newEngineEnv), which removes its containers and closes at the end.

// healthWait polls the record of ref until its health satisfies cond.
func healthWait(env *engineEnv, ref string, timeout time.Duration, what string, cond func(*healthcheck.State) bool) *backend.Container {
	env.t.Helper()
	return env.waitFor(ref, timeout, what, func(c *backend.Container) bool {
		return c.Health != nil && cond(c.Health)
	})
}

// waitEvent polls the recorded events of id until one of type typ whose
// attribute key is val arrives, and returns it.
func waitEvent(env *engineEnv, id, typ, key, val string, timeout time.Duration) backend.Event {
	env.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, ev := range env.evs.of(id, typ) {
			if key == "" || ev.Attributes[key] == val {
				return ev
			}
		}
		if time.Now().After(deadline) {
			env.t.Fatalf("no %s event with %s=%q for %s within %v; got %v", typ, key, val, shortHealthID(id), timeout, healthEventSummary(env, id))
		}
		env.evs.waitChange(50 * time.Millisecond)
	}
}

func healthEventSummary(env *engineEnv, id string) []string {
	env.evs.mu.Lock()
	defer env.evs.mu.Unlock()
	var out []string
	for _, ev := range env.evs.evs {
		if ev.ContainerID == id {
			out = append(out, fmt.Sprintf("%s%v", ev.Type, ev.Attributes))
		}
	}
	return out
}

func shortHealthID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func healthLogString(st *healthcheck.State) string {
	if st == nil {
		return "<nil>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "status %s streak %d log:", st.Status, st.FailingStreak)
	for _, r := range st.Log {
		out := r.Output
		if len(out) > 80 {
			out = out[:80] + "..."
		}
		fmt.Fprintf(&b, "\n  start %s end %s (%v) exit %d output %q", r.Start.Format("15:04:05.000"), r.End.Format("15:04:05.000"), r.End.Sub(r.Start).Round(time.Millisecond), r.ExitCode, out)
	}
	return b.String()
}

// execOutput runs argv in ref through Engine.Exec and returns its output.
func execOutput(env *engineEnv, ref string, argv ...string) (string, int) {
	env.t.Helper()
	ctx, cancel := context.WithTimeout(testCtx(env.t), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	x, err := env.e.Exec(ctx, ref, backend.ExecOptions{Cmd: argv, Stdout: &out, Stderr: &out})
	if err != nil {
		env.t.Fatalf("Exec %v in %s: %v", argv, ref, err)
	}
	code, err := x.Wait(ctx)
	if err != nil {
		env.t.Fatalf("wait for exec %v in %s: %v", argv, ref, err)
	}
	return out.String(), code
}

func TestHealthProbeBecomesHealthy(t *testing.T) {
	env := newEngineEnv(t, nil)
	const interval = 300 * time.Millisecond
	c := env.run(backend.CreateOptions{
		Name: "healthy", Cmd: []string{"sleep", "1000"},
		Health: &healthcheck.Config{Test: []string{"CMD", "true"}, Interval: interval, Timeout: 5 * time.Second, Retries: 2},
	})
	if c.Health == nil || c.Health.Status != healthcheck.StatusStarting {
		t.Fatalf("health right after start: want starting, got %s", healthLogString(c.Health))
	}
	got := healthWait(env, c.ID, 10*time.Second, "healthy", func(st *healthcheck.State) bool { return st.Status == healthcheck.StatusHealthy })
	first := got.Health.Log[0]
	// The first probe is staggered within the interval, so it starts within
	// it (plus some scheduling slack on a loaded machine); its exec then
	// takes what it takes.
	if d := first.Start.Sub(got.StartedAt); d > interval+2*time.Second {
		t.Errorf("first probe started %v after the container; want within the interval %v\n%s", d, interval, healthLogString(got.Health))
	}
	if first.ExitCode != 0 || got.Health.FailingStreak != 0 {
		t.Errorf("want a successful first probe and no failing streak\n%s", healthLogString(got.Health))
	}
	ev := waitEvent(env, c.ID, "health_status", "health_status", healthcheck.StatusHealthy, 5*time.Second)
	if ev.Time.Before(first.End) {
		t.Errorf("healthy event at %v before the first probe ended at %v", ev.Time, first.End)
	}
	t.Logf("healthy after %v (first probe took %v)", first.End.Sub(got.StartedAt).Round(time.Millisecond), first.End.Sub(first.Start).Round(time.Millisecond))
}

func TestHealthProbeUnhealthyAfterRetries(t *testing.T) {
	env := newEngineEnv(t, nil)
	const retries = 3
	c := env.run(backend.CreateOptions{
		Name: "flaky", Cmd: []string{"sh", "-c", "touch /tmp/ok && exec sleep 1000"},
		Health: &healthcheck.Config{Test: []string{"CMD-SHELL", "test -f /tmp/ok"}, Interval: 400 * time.Millisecond, Timeout: 5 * time.Second, Retries: retries},
	})
	healthWait(env, c.ID, 10*time.Second, "healthy", func(st *healthcheck.State) bool { return st.Status == healthcheck.StatusHealthy })
	if out, code := execOutput(env, c.ID, "rm", "/tmp/ok"); code != 0 {
		t.Fatalf("rm /tmp/ok: exit %d: %s", code, out)
	}
	removed := time.Now()
	ev := waitEvent(env, c.ID, "health_status", "health_status", healthcheck.StatusUnhealthy, 15*time.Second)
	got := env.inspect(c.ID)
	st := got.Health
	t.Logf("unhealthy %v after the file was removed\n%s", ev.Time.Sub(removed).Round(time.Millisecond), healthLogString(st))
	if st.Status != healthcheck.StatusUnhealthy {
		t.Fatalf("status after the unhealthy event: %s", healthLogString(st))
	}
	// A further probe may have ended between the event and Inspect: count
	// the failures that led to the event, i.e. those that ended before it,
	// back to the last success.
	var before []healthcheck.Result
	for _, r := range st.Log {
		if !r.End.After(ev.Time) {
			before = append(before, r)
		}
	}
	fails := 0
	for i := len(before) - 1; i >= 0 && before[i].ExitCode != 0; i-- {
		fails++
	}
	if fails != retries {
		t.Errorf("the container went unhealthy after %d failures, want exactly retries=%d\n%s", fails, retries, healthLogString(st))
	}
	if len(before) <= retries || before[len(before)-retries-1].ExitCode != 0 {
		t.Errorf("want the success before the failures in the log (%d entries kept)\n%s", len(before), healthLogString(st))
	}
	if st.FailingStreak < retries || st.FailingStreak > retries+len(st.Log)-len(before) {
		t.Errorf("FailingStreak %d: want %d plus the probes after the event\n%s", st.FailingStreak, retries, healthLogString(st))
	}
	for _, r := range before[len(before)-fails:] {
		if r.ExitCode != 1 {
			t.Errorf("failed probe: exit %d, want 1 (test -f)", r.ExitCode)
		}
		if r.Start.Before(removed.Add(-time.Second)) {
			t.Errorf("a failure started at %v, before the file was removed at %v", r.Start, removed)
		}
	}
	var statuses []string
	for _, e := range env.evs.of(c.ID, "health_status") {
		statuses = append(statuses, e.Attributes["health_status"])
	}
	if strings.Join(statuses, ",") != "healthy,unhealthy" {
		t.Errorf("health_status events: %v, want [healthy unhealthy]", statuses)
	}
	if got.State != backend.StateRunning {
		t.Errorf("state %s: the default on-unhealthy action is none, want running", got.State)
	}
}

// TestHealthProbeTimeoutKillsProcessTree runs a probe that forks a sleeping
// child and hangs. On timeout its whole tree must be killed and reaped: no
// probe process or zombie may be left in the container.
//   - init: the default for a container with a health check. PID 1 is
//     tend-init, which runs the probe under a subreaper of its own that
//     kills and reaps all of it before the exit is reported, although the
//     container's command (sleep) never reaps anything.
//   - exec: Init off, the probe is a containerd exec of tend-init's probe
//     mode (tend-init is mounted, not PID 1), whose subreaper kills and
//     reaps the probe's tree when told to on timeout. PID 1 here is a
//     shell waiting for its jobs (waitpid(-1)).
//   - exec-no-reaper: Init off and PID 1 is sleep, which never waits: the
//     subreaper reaps the killed orphan itself, so unlike Docker without
//     --init no zombie is left either.
func TestHealthProbeTimeoutKillsProcessTree(t *testing.T) {
	const initArgs = "/sbin/tend-init --probe-socket /.tend/probe.sock --exit-record /.tend/exit.json -- "
	off := false
	for _, tc := range []struct {
		name string
		init *bool
		cmd  []string
		main []string // args of the container's own live processes, PID 1 first
	}{
		{"init", nil, []string{"sleep", "1000"}, []string{initArgs + "sleep 1000", "sleep 1000"}},
		{"exec", &off, []string{"sh", "-c", "sleep 1000 & wait"}, []string{"sh -c sleep 1000 & wait", "sleep 1000"}},
		{"exec-no-reaper", &off, []string{"sleep", "1000"}, []string{"sleep 1000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEngineEnv(t, nil)
			const timeout = 300 * time.Millisecond
			// StartInterval paces the first probe; the long Interval keeps a
			// second probe from running while the test looks for leftovers.
			c := env.run(backend.CreateOptions{
				Name: "hang", Cmd: tc.cmd, Init: tc.init,
				Health: &healthcheck.Config{
					Test:    []string{"CMD-SHELL", "sleep 1000 & sleep 1000"},
					Timeout: timeout, Interval: time.Minute, StartInterval: 100 * time.Millisecond, Retries: 5,
				},
			})
			got := healthWait(env, c.ID, 15*time.Second, "a probe result", func(st *healthcheck.State) bool { return len(st.Log) > 0 })
			r := got.Health.Log[0]
			t.Logf("%s", healthLogString(got.Health))
			if r.ExitCode != -1 {
				t.Errorf("timed-out probe: exit %d, want -1", r.ExitCode)
			}
			if !strings.Contains(r.Output, "timed out") || !strings.Contains(r.Output, timeout.String()) {
				t.Errorf("timed-out probe output %q: want it to say it timed out after %v", r.Output, timeout)
			}
			if d := r.End.Sub(r.Start); d < timeout || d > timeout+15*time.Second {
				t.Errorf("timed-out probe took %v, want about %v", d, timeout)
			}
			if got.Health.FailingStreak != 1 || got.Health.Status != healthcheck.StatusStarting {
				t.Errorf("after one timeout want starting with a streak of 1\n%s", healthLogString(got.Health))
			}

			// The result is recorded only after the probe was killed and
			// reaped, so nothing of it may run now. A zombie reparented to
			// a reaping PID 1 is collected asynchronously: poll for that.
			var procs []backend.TopProcess
			var live, zombies []string
			deadline := time.Now().Add(5 * time.Second)
			for {
				var err error
				procs, err = env.e.Top(testCtx(t), c.ID)
				if err != nil {
					t.Fatalf("Top: %v", err)
				}
				out, code := execOutput(env, c.ID, "ps", "-o", "pid,stat,args")
				if code != 0 {
					t.Fatalf("ps: exit %d: %s", code, out)
				}
				live, zombies = psLeftovers(out, tc.main)
				if len(live) > 0 || len(zombies) == 0 || time.Now().After(deadline) {
					t.Logf("ps in the container:\n%s", out)
					break
				}
				runtimeYield()
			}
			var desc []string
			for _, p := range procs {
				desc = append(desc, fmt.Sprintf("%d(ppid %d) %s [%s]", p.Pid, p.PPid, p.Command, hostProcState(p.Pid)))
			}
			t.Logf("task processes (Top): %v", desc)
			if len(procs) != len(tc.main) {
				t.Errorf("Top lists %d processes, want the container's own %d: %v", len(procs), len(tc.main), desc)
			}
			if len(live) > 0 {
				t.Errorf("probe processes still running in the container: %q", live)
			}
			if len(zombies) > 0 {
				t.Errorf("zombies of the killed probe left: %q", zombies)
			}
		})
	}
}

// psLeftovers parses `ps -o pid,stat,args` and returns the lines that are
// neither the container's own processes (main, by args) nor ps itself,
// split into live processes and zombies.
func psLeftovers(out string, main []string) (live, zombies []string) {
	own := map[string]int{}
	for _, m := range main {
		own[m]++
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		args := strings.Join(f[2:], " ")
		switch {
		case own[args] > 0:
			own[args]--
		case strings.HasPrefix(args, "ps -o"):
		case strings.HasPrefix(f[1], "Z"):
			zombies = append(zombies, strings.TrimSpace(l))
		default:
			live = append(live, strings.TrimSpace(l))
		}
	}
	return live, zombies
}

// hostProcState returns the state letter of a host process, "gone" if it
// has exited and was reaped.
func hostProcState(pid uint32) string {
	st, ok := readStatField(pid)
	if !ok {
		return "gone"
	}
	return st
}

func readStatField(pid uint32) (string, bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", false
	}
	b := string(raw)
	i := strings.LastIndexByte(b, ')')
	if i < 0 || i+3 > len(b) {
		return "", false
	}
	return b[i+2 : i+3], true
}

func TestHealthProbeOutputCapped(t *testing.T) {
	env := newEngineEnv(t, nil)
	const size = 1 << 20
	c := env.run(backend.CreateOptions{
		Name: "chatty", Cmd: []string{"sleep", "1000"},
		Health: &healthcheck.Config{Test: []string{"CMD-SHELL", `head -c 1048576 /dev/zero | tr '\0' a`}, Interval: 300 * time.Millisecond, Timeout: 10 * time.Second},
	})
	got := healthWait(env, c.ID, 15*time.Second, "a probe result", func(st *healthcheck.State) bool { return len(st.Log) > 0 })
	r := got.Health.Log[0]
	if r.ExitCode != 0 || got.Health.Status != healthcheck.StatusHealthy {
		t.Errorf("the chatty probe succeeds: want exit 0 and healthy\n%s", healthLogString(got.Health))
	}
	kept := strings.Repeat("a", healthcheck.DefaultOutputBytes)
	marker := fmt.Sprintf("\n[output truncated: %d bytes omitted]", size-healthcheck.DefaultOutputBytes)
	if r.Output != kept+marker {
		tail := r.Output
		if len(tail) > 100 {
			tail = tail[len(tail)-100:]
		}
		t.Errorf("output: %d bytes ending in %q; want %d bytes of 'a' then %q", len(r.Output), tail, healthcheck.DefaultOutputBytes, marker)
	}
}

func TestHealthOnUnhealthyRestart(t *testing.T) {
	env := newEngineEnv(t, nil)
	c := env.run(backend.CreateOptions{
		Name: "sick", Cmd: []string{"sleep", "1000"},
		Restart: backend.RestartPolicy{Name: backend.RestartOnFailure, MaximumRetryCount: 2},
		Health: &healthcheck.Config{
			Test: []string{"CMD", "false"}, Interval: 200 * time.Millisecond, Timeout: 5 * time.Second, Retries: 1,
			OnUnhealthy: healthcheck.ActionRestart,
		},
	})
	got := env.waitFor(c.ID, 30*time.Second, "exited after the restarts", func(c *backend.Container) bool {
		return c.State == backend.StateExited
	})
	t.Logf("events: %v", healthEventSummary(env, c.ID))
	if got.RestartCount != 2 {
		t.Errorf("RestartCount %d, want 2", got.RestartCount)
	}
	if got.ExitReason != "unhealthy" {
		t.Errorf("ExitReason %q, want unhealthy", got.ExitReason)
	}
	if got.ExitCode != 137 {
		t.Errorf("ExitCode %d, want 137 (SIGKILL)", got.ExitCode)
	}
	restarts := env.evs.of(c.ID, "restart")
	if len(restarts) != 2 {
		t.Errorf("%d restart events, want 2", len(restarts))
	}
	for i, ev := range restarts {
		if ev.Attributes["reason"] != "unhealthy" || ev.Attributes["restart_count"] != fmt.Sprint(i+1) {
			t.Errorf("restart event %d: %v, want reason unhealthy, restart_count %d", i, ev.Attributes, i+1)
		}
	}
	dies := env.evs.of(c.ID, "die")
	if len(dies) != 3 {
		t.Errorf("%d die events, want 3", len(dies))
	}
	for i, ev := range dies {
		if ev.Attributes["reason"] != "unhealthy" {
			t.Errorf("die event %d: %v, want reason unhealthy", i, ev.Attributes)
		}
	}
	var unhealthy int
	for _, ev := range env.evs.of(c.ID, "health_status") {
		if ev.Attributes["health_status"] == healthcheck.StatusUnhealthy {
			unhealthy++
		}
	}
	if unhealthy != 3 {
		t.Errorf("%d health_status unhealthy events, want 3 (one per run)", unhealthy)
	}
	if starts := env.evs.of(c.ID, "start"); len(starts) != 3 {
		t.Errorf("%d start events, want 3", len(starts))
	}
	// Stopped: no more probes.
	n := len(env.inspect(c.ID).Health.Log)
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if h := env.inspect(c.ID).Health; len(h.Log) != n {
			t.Fatalf("the log of an exited container grew\n%s", healthLogString(h))
		}
		env.evs.waitChange(100 * time.Millisecond)
	}
}

func TestHealthProbesPauseWithContainer(t *testing.T) {
	env := newEngineEnv(t, nil)
	const interval = 200 * time.Millisecond
	c := env.run(backend.CreateOptions{
		Name: "frozen", Cmd: []string{"sleep", "1000"},
		Health: &healthcheck.Config{Test: []string{"CMD", "true"}, Interval: interval, Timeout: 5 * time.Second},
	})
	healthWait(env, c.ID, 10*time.Second, "healthy with two results", func(st *healthcheck.State) bool {
		return st.Status == healthcheck.StatusHealthy && len(st.Log) >= 2
	})
	if err := env.e.Pause(testCtx(t), c.ID); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	pauseAt := time.Now()
	// A probe that started before Pause returned may still be recorded;
	// none may start after it. Watch for five intervals.
	deadline := time.Now().Add(5 * interval)
	var last *backend.Container
	for time.Now().Before(deadline) {
		last = env.inspect(c.ID)
		for _, r := range last.Health.Log {
			if r.Start.After(pauseAt) {
				t.Fatalf("a probe started %v after Pause\n%s", r.Start.Sub(pauseAt), healthLogString(last.Health))
			}
		}
		env.evs.waitChange(interval / 4)
	}
	if last.State != backend.StatePaused || last.Health.Status != healthcheck.StatusHealthy {
		t.Errorf("while paused: state %s, %s", last.State, healthLogString(last.Health))
	}
	resumeAt := time.Now()
	if err := env.e.Resume(testCtx(t), c.ID); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	got := healthWait(env, c.ID, 10*time.Second, "a result after Resume", func(st *healthcheck.State) bool {
		return len(st.Log) > 0 && st.Log[len(st.Log)-1].Start.After(resumeAt)
	})
	if got.Health.Status != healthcheck.StatusHealthy || got.Health.Log[len(got.Health.Log)-1].ExitCode != 0 {
		t.Errorf("after Resume: %s", healthLogString(got.Health))
	}
	t.Logf("first probe %v after Resume", got.Health.Log[len(got.Health.Log)-1].Start.Sub(resumeAt).Round(time.Millisecond))
}

func TestHealthStatusSurvivesEngineRestart(t *testing.T) {
	env := newEngineEnv(t, nil) // LiveRestore
	c := env.run(backend.CreateOptions{
		Name: "steady", Cmd: []string{"sleep", "1000"},
		Health: &healthcheck.Config{Test: []string{"CMD", "true"}, Interval: 300 * time.Millisecond, Timeout: 5 * time.Second},
	})
	before := healthWait(env, c.ID, 10*time.Second, "healthy", func(st *healthcheck.State) bool { return st.Status == healthcheck.StatusHealthy })
	env.shutdown()
	closedAt := time.Now()
	e := env.open()
	got, err := e.Inspect(testCtx(t), c.ID)
	if err != nil {
		t.Fatalf("Inspect after New: %v", err)
	}
	if got.State != backend.StateRunning || got.Pid != before.Pid {
		t.Errorf("after New: state %s pid %d, want running pid %d (live-restore)", got.State, got.Pid, before.Pid)
	}
	if got.Health == nil || got.Health.Status != healthcheck.StatusHealthy {
		t.Fatalf("health right after New: want healthy, got %s", healthLogString(got.Health))
	}
	if len(got.Health.Log) < len(before.Health.Log) {
		t.Errorf("the log lost entries across the restart: before\n%s\nafter\n%s", healthLogString(before.Health), healthLogString(got.Health))
	}
	// Probing goes on with the new engine, and the status stays healthy.
	after := healthWait(env, c.ID, 10*time.Second, "a result from the new engine", func(st *healthcheck.State) bool {
		return len(st.Log) > 0 && st.Log[len(st.Log)-1].Start.After(closedAt)
	})
	if after.Health.Status != healthcheck.StatusHealthy {
		t.Errorf("after the first probe of the new engine: %s", healthLogString(after.Health))
	}
	for _, ev := range env.evs.of(c.ID, "health_status") {
		t.Errorf("the new engine reported a status change: %v", ev.Attributes)
	}
}

// probeEscapes are health probes whose leftovers leave the probe's session
// and process group; each leaves `sleep 1000` processes behind unless the
// probe is guarded by a subreaper of its own.
var probeEscapes = []struct{ name, cmd string }{
	{"setsid", `setsid sh -c 'sleep 1000 &'`},
	{"setsid-double-fork", `setsid sh -c 'sh -c "setsid sleep 1000 &" &'`},
	{"setsid-nohup", `setsid sh -c 'trap "" HUP; exec sleep 1000' >/dev/null 2>&1 &`},
	{"stdout-closed", `setsid sh -c 'exec >/dev/null 2>&1 </dev/null; sleep 1000 &'`},
	{"stdout-held", `setsid sh -c 'sleep 1000 & echo held'`},
}

// TestHealthProbeEscapesLeaveNothing runs probes that escape their session
// under tend-init, many times, then looks at the container's processes: a
// leaked process lives for good, so one look with nothing of the probes in
// it (a probe may be running at any other look) proves that none leaked.
func TestHealthProbeEscapesLeaveNothing(t *testing.T) {
	const initArgs = "/sbin/tend-init --probe-socket /.tend/probe.sock --exit-record /.tend/exit.json -- "
	main := []string{initArgs + "sleep 999", "sleep 999"}
	for _, tc := range probeEscapes {
		t.Run(tc.name, func(t *testing.T) {
			env := newEngineEnv(t, nil)
			c := env.run(backend.CreateOptions{
				Name: "escape", Cmd: []string{"sleep", "999"},
				Health: &healthcheck.Config{
					Test:    []string{"CMD-SHELL", tc.cmd},
					Timeout: 10 * time.Second, Interval: 50 * time.Millisecond, Retries: 3,
				},
			})
			const probes = 10
			waitTenPassingProbes(t, env, c.ID, tc.cmd, 30*time.Second)
			noProbeLeftovers(t, env, c.ID, main, fmt.Sprintf("at least %d probes %q", probes, tc.cmd))
		})
	}
}

// TestHealthProbeTimeoutEscapedHoldsPipe: a probe that times out while a
// process it started in another session holds its output pipe is reported
// at the timeout, and nothing of it is left.
func TestHealthProbeTimeoutEscapedHoldsPipe(t *testing.T) {
	const initArgs = "/sbin/tend-init --probe-socket /.tend/probe.sock --exit-record /.tend/exit.json -- "
	env := newEngineEnv(t, nil)
	const timeout = time.Second
	c := env.run(backend.CreateOptions{
		Name: "held", Cmd: []string{"sleep", "999"},
		Health: &healthcheck.Config{
			Test:    []string{"CMD-SHELL", `setsid sh -c 'sleep 1000 &'; setsid sh -c 'sleep 1000 & exec sleep 1000' & sleep 1000`},
			Timeout: timeout, Interval: time.Minute, StartInterval: 100 * time.Millisecond, Retries: 5,
		},
	})
	got := healthWait(env, c.ID, 30*time.Second, "a probe result", func(st *healthcheck.State) bool { return len(st.Log) > 0 })
	r := got.Health.Log[0]
	if r.ExitCode != -1 || !strings.Contains(r.Output, "timed out") {
		t.Errorf("probe result: exit %d, output %q; want -1 and a timeout", r.ExitCode, r.Output)
	}
	// Killing and reaping the probe takes milliseconds; the escaped
	// processes held the output pipe, which must not hold up the report
	// (tend-init gives a pipe held by strangers a second).
	if d := r.End.Sub(r.Start); d < timeout || d >= timeout+900*time.Millisecond {
		t.Errorf("timed-out probe took %v, want %v and at most the kill's own time", d, timeout)
	}
	out, code := execOutput(env, c.ID, "ps", "-o", "pid,stat,args")
	if code != 0 {
		t.Fatalf("ps: exit %d: %s", code, out)
	}
	if live, zombies := psLeftovers(out, []string{initArgs + "sleep 999", "sleep 999"}); len(live)+len(zombies) > 0 {
		t.Errorf("processes of the timed-out probe left in the container: %q %q\n%s", live, zombies, out)
	}
}

// removeProbeSocket removes the host end of c's tend-init probe socket, so
// that every later probe runs as an exec.
func removeProbeSocket(t *testing.T, env *engineEnv, id string) {
	t.Helper()
	var found []string
	// tend-init creates it once it runs.
	testutil.Poll(t, "the probe socket", func() bool {
		found = nil
		filepath.WalkDir(env.cfg.Root, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.Type()&fs.ModeSocket != 0 && strings.Contains(path, id) {
				found = append(found, path)
			}
			return nil
		})
		return len(found) > 0
	})
	if len(found) != 1 {
		t.Fatalf("want one probe socket of %s under %s, found %q", id, env.cfg.Root, found)
	}
	if err := os.Remove(found[0]); err != nil {
		t.Fatal(err)
	}
}

// TestHealthExecProbeEscapes: probes that run as execs in a container under
// tend-init (its socket does not answer) are guarded by tend-init's probe
// mode: whatever they do with sessions, nothing of them is left, and a
// timed-out one is reported at its timeout although escaped processes hold
// its output.
func TestHealthExecProbeEscapes(t *testing.T) {
	const initArgs = "/sbin/tend-init --probe-socket /.tend/probe.sock --exit-record /.tend/exit.json -- "
	main := []string{initArgs + "sleep 999", "sleep 999"}
	for _, tc := range []struct{ name, cmd string }{probeEscapes[0], probeEscapes[1], probeEscapes[4]} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEngineEnv(t, nil)
			c := env.run(backend.CreateOptions{
				Name: "escape", Cmd: []string{"sleep", "999"},
				Health: &healthcheck.Config{
					Test:    []string{"CMD-SHELL", tc.cmd},
					Timeout: 10 * time.Second, Interval: 50 * time.Millisecond, Retries: 3,
				},
			})
			removeProbeSocket(t, env, c.ID)
			removed := time.Now()
			// Every probe in the log (it keeps 5) started after the socket
			// was gone: they ran as execs.
			healthWait(env, c.ID, 60*time.Second, "5 exec probe results", func(st *healthcheck.State) bool {
				for _, r := range st.Log {
					if r.ExitCode != 0 {
						t.Fatalf("probe %q failed:\n%s", tc.cmd, healthLogString(st))
					}
				}
				return len(st.Log) >= 5 && st.Log[0].Start.After(removed)
			})
			noProbeLeftovers(t, env, c.ID, main, fmt.Sprintf("5 exec probes %q", tc.cmd))
		})
	}
	t.Run("timeout", func(t *testing.T) {
		env := newEngineEnv(t, nil)
		const timeout = time.Second
		c := env.run(backend.CreateOptions{
			Name: "held", Cmd: []string{"sleep", "999"},
			Health: &healthcheck.Config{
				Test:    []string{"CMD-SHELL", `setsid sh -c 'sleep 1000 &'; setsid sh -c 'sleep 1000 & exec sleep 1000' & sleep 1000`},
				Timeout: timeout, Interval: 2 * time.Second, Retries: 5,
			},
		})
		removeProbeSocket(t, env, c.ID)
		removed := time.Now()
		var r healthcheck.Result
		healthWait(env, c.ID, 60*time.Second, "a probe result after the socket was removed", func(st *healthcheck.State) bool {
			for _, e := range st.Log {
				if e.Start.After(removed) {
					r = e
					return true
				}
			}
			return false
		})
		if r.ExitCode != -1 || !strings.Contains(r.Output, "timed out") {
			t.Errorf("probe result: exit %d, output %q; want -1 and a timeout", r.ExitCode, r.Output)
		}
		// The kill of an exec goes through containerd: give it two
		// seconds on a loaded machine (an output held by escaped
		// processes cost five).
		if d := r.End.Sub(r.Start); d < timeout || d >= timeout+2*time.Second {
			t.Errorf("timed-out exec probe took %v, want %v and at most the kill's own time", d, timeout)
		}
		// The next probe may be running at any look; a leaked process
		// stays for good.
		noProbeLeftovers(t, env, c.ID, main, "the timed-out exec probes")
	})
}

// TestHealthExecProbeEscapesWithoutInit: in a container without tend-init
// as PID 1 (Init off) whose PID 1 (sleep) reaps nothing, exec probes run
// under tend-init's probe mode all the same (it is mounted for them):
// whatever they do with sessions, nothing of them is left, not even a
// zombie, and a timed-out one is reported at its timeout although escaped
// processes hold its output.
func TestHealthExecProbeEscapesWithoutInit(t *testing.T) {
	off := false
	for _, tc := range probeEscapes {
		t.Run(tc.name, func(t *testing.T) {
			env := newEngineEnv(t, nil)
			c := env.run(backend.CreateOptions{
				Name: "escape", Cmd: []string{"sleep", "999"}, Init: &off,
				Health: &healthcheck.Config{
					Test:    []string{"CMD-SHELL", tc.cmd},
					Timeout: 10 * time.Second, Interval: 50 * time.Millisecond, Retries: 3,
				},
			})
			const probes = 10
			waitTenPassingProbes(t, env, c.ID, tc.cmd, 60*time.Second)
			noProbeLeftovers(t, env, c.ID, []string{"sleep 999"}, fmt.Sprintf("at least %d exec probes %q", probes, tc.cmd))
		})
	}
	t.Run("timeout", func(t *testing.T) {
		env := newEngineEnv(t, nil)
		const timeout = time.Second
		c := env.run(backend.CreateOptions{
			Name: "held", Cmd: []string{"sleep", "999"}, Init: &off,
			Health: &healthcheck.Config{
				Test:    []string{"CMD-SHELL", `setsid sh -c 'sleep 1000 &'; setsid sh -c 'sleep 1000 & exec sleep 1000' & sleep 1000`},
				Timeout: timeout, Interval: time.Minute, StartInterval: 100 * time.Millisecond, Retries: 5,
			},
		})
		got := healthWait(env, c.ID, 60*time.Second, "a probe result", func(st *healthcheck.State) bool { return len(st.Log) > 0 })
		r := got.Health.Log[0]
		t.Logf("%s", healthLogString(got.Health))
		if r.ExitCode != -1 || !strings.Contains(r.Output, "timed out") {
			t.Errorf("probe result: exit %d, output %q; want -1 and a timeout", r.ExitCode, r.Output)
		}
		// The subreaper kills and reaps the probe's processes within
		// milliseconds of its SIGTERM, which goes through containerd: two
		// seconds on a loaded machine. An unguarded exec whose output
		// escaped processes hold is reported about five seconds late.
		if d := r.End.Sub(r.Start); d < timeout || d >= timeout+2*time.Second {
			t.Errorf("timed-out exec probe took %v, want %v and at most the kill's own time", d, timeout)
		}
		noProbeLeftovers(t, env, c.ID, []string{"sleep 999"}, "a timed-out exec probe")
	})
}

// waitTenPassingProbes waits until at least 10 probes of container id ran,
// failing on any that failed. The log keeps the last 5: once it is full, it
// waits until its oldest entry is newer than the newest of then.
func waitTenPassingProbes(t *testing.T, env *engineEnv, id, cmd string, timeout time.Duration) {
	t.Helper()
	failed := func(st *healthcheck.State) {
		for _, r := range st.Log {
			if r.ExitCode != 0 {
				t.Fatalf("probe %q failed:\n%s", cmd, healthLogString(st))
			}
		}
	}
	full := healthWait(env, id, timeout, "5 probe results", func(st *healthcheck.State) bool {
		failed(st)
		return len(st.Log) >= 5
	})
	last := full.Health.Log[len(full.Health.Log)-1].Start
	healthWait(env, id, timeout, "10 probe results", func(st *healthcheck.State) bool {
		failed(st)
		return st.Log[0].Start.After(last)
	})
}

// noProbeLeftovers polls ps in container id until nothing but its own
// processes (main) is in it, zombies included: a probe may be running at
// any look, but a leaked process or zombie stays for good.
func noProbeLeftovers(t *testing.T, env *engineEnv, id string, main []string, what string) {
	t.Helper()
	var out string
	var live, zombies []string
	deadline := time.Now().Add(20 * time.Second)
	for {
		var code int
		out, code = execOutput(env, id, "ps", "-o", "pid,stat,args")
		if code != 0 {
			t.Fatalf("ps: exit %d: %s", code, out)
		}
		live, zombies = psLeftovers(out, main)
		if len(live)+len(zombies) == 0 || time.Now().After(deadline) {
			break
		}
		runtimeYield()
	}
	if len(live)+len(zombies) > 0 {
		t.Errorf("after %s, processes of the probes still in the container: %q %q\n%s", what, live, zombies, out)
	}
}

// waitProbesSince waits until container id has n probe results that
// started after since, and fails on any failed one.
func waitProbesSince(t *testing.T, env *engineEnv, id string, since time.Time, n int) {
	t.Helper()
	healthWait(env, id, 60*time.Second, fmt.Sprintf("%d probe results after %s", n, since.Format("15:04:05.000")), func(st *healthcheck.State) bool {
		k := 0
		for _, r := range st.Log {
			if r.ExitCode != 0 {
				t.Fatalf("probe failed:\n%s", healthLogString(st))
			}
			if r.Start.After(since) {
				k++
			}
		}
		return k >= n
	})
}

// TestHealthExecProbeEscapesWithoutInitAfterEngineRestart: the guard of
// exec probes in a container without tend-init as PID 1 holds for the
// containers an engine re-attaches to after a restart.
func TestHealthExecProbeEscapesWithoutInitAfterEngineRestart(t *testing.T) {
	env := newEngineEnv(t, nil)
	off := false
	c := env.run(backend.CreateOptions{
		Name: "escape", Cmd: []string{"sleep", "999"}, Init: &off,
		Health: &healthcheck.Config{
			Test:    []string{"CMD-SHELL", probeEscapes[0].cmd},
			Timeout: 10 * time.Second, Interval: 100 * time.Millisecond, Retries: 3,
		},
	})
	waitProbesSince(t, env, c.ID, c.StartedAt, 2)
	env.shutdown()
	env.open()
	reopened := time.Now()
	waitProbesSince(t, env, c.ID, reopened, 5)
	noProbeLeftovers(t, env, c.ID, []string{"sleep 999"}, "exec probes after an engine restart")
}
