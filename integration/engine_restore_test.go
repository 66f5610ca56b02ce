package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// engineTimes is the part of a raw record with the run's times.
type engineTimes struct {
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
}

func (d *engineDaemon) times(t *testing.T, ref string) engineTimes {
	t.Helper()
	var recs []engineTimes
	out := d.must(t, "inspect", "--raw", ref)
	if err := json.Unmarshal([]byte(out), &recs); err != nil || len(recs) != 1 {
		t.Fatalf("inspect %s: %v in %q", ref, err, out)
	}
	return recs[0]
}

// TestEngineExitsWhileDaemonDownShownAtOnce SIGKILLs the engine daemon
// while three containers run and lets each die while it is down: one exits
// by itself (42), one is SIGKILLed from the host, one fails (3) under
// on-failure. The first answers of the restarted daemon (inspect and ps,
// from the moment it serves) show the exits with their own times, in every
// round: the daemon restores before it serves, and never shows a dead pid
// as running.
func TestEngineExitsWhileDaemonDownShownAtOnce(t *testing.T) {
	root, err := os.MkdirTemp(testEnv.Root, "eng-down-")
	if err != nil {
		t.Fatal(err)
	}
	ns := testEnv.Namespace + "-engdown"
	d := startEngine(t, root, ns)
	t.Cleanup(func() { cleanupEngine(t, d) })
	d.must(t, "image", "import", engineImage(t))
	img := testEnv.ImageRef
	// self and failed exit once the test lets them (a file in their
	// rootfs), after the daemon is gone; failed only on its first run.
	waitGo := "while [ ! -e /tmp/go ]; do sleep 0.1; done; "
	for round := range 3 {
		self, killed, failed := fmt.Sprintf("self%d", round), fmt.Sprintf("killed%d", round), fmt.Sprintf("failed%d", round)
		d.must(t, "run", "-d", "--name", self, img, "sh", "-c", waitGo+"exit 42")
		d.must(t, "run", "-d", "--name", killed, img, "sleep", "1000")
		d.must(t, "run", "-d", "--name", failed, "--restart", "on-failure", img, "sh", "-c",
			"if [ -e /ran ]; then exec sleep 1000; fi; touch /ran; "+waitGo+"exit 3")
		pids := map[string]int{}
		for _, n := range []string{self, killed, failed} {
			r := d.inspect(t, n)
			if r.State != "running" || r.Pid == 0 {
				t.Fatalf("round %d: %s is %s (pid %d) before the kill", round, n, r.State, r.Pid)
			}
			pids[n] = r.Pid
		}

		d.kill(t)
		released := time.Now()
		for _, n := range []string{self, failed} {
			if err := os.WriteFile(fmt.Sprintf("/proc/%d/root/tmp/go", pids[n]), nil, 0o600); err != nil {
				t.Fatalf("round %d: let %s exit: %v", round, n, err)
			}
		}
		_ = syscall.Kill(pids[killed], syscall.SIGKILL)
		for _, n := range []string{self, killed, failed} {
			hostProcessGone(t, uint32(pids[n]), 30*time.Second)
		}
		gone := time.Now()
		// A daemon that took the time it handles an exit for FinishedAt
		// would be off by at least this gap (no synchronisation: the exits
		// have happened).
		gap := time.NewTimer(2 * time.Second)
		<-gap.C

		d = startEngine(t, root, ns)
		// The first answers, no wait.
		out := d.must(t, "ps", "-a", "--format", "{{.Names}}\t{{.Status}}")
		status := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if name, st, ok := strings.Cut(line, "\t"); ok {
				status[name] = st
			}
		}
		for _, w := range []struct {
			name, ps string
			code     int
		}{{self, "Exited (42)", 42}, {killed, "Exited (137)", 137}} {
			r := d.inspect(t, w.name)
			if r.State != "exited" || r.ExitCode != w.code || r.Pid != 0 {
				t.Errorf("round %d: %s right after the daemon serves: %s exit %d pid %d; want exited %d pid 0",
					round, w.name, r.State, r.ExitCode, r.Pid, w.code)
			}
			if !strings.HasPrefix(status[w.name], w.ps) {
				t.Errorf("round %d: ps shows %s as %q, want %q...", round, w.name, status[w.name], w.ps)
			}
			// The exit's own time: before the test saw the process gone,
			// not when the new daemon handled it.
			if tm := d.times(t, w.name); tm.FinishedAt.After(gone.Add(time.Second)) || (w.name == self && tm.FinishedAt.Before(released)) {
				t.Errorf("round %d: %s FinishedAt %v; want the exit's time, before %v", round, w.name, tm.FinishedAt, gone)
			}
		}
		// failed is restarting (its backoff pending) or already runs again:
		// never its dead pid.
		r := d.inspect(t, failed)
		if r.Pid == pids[failed] || r.RestartCount != 1 || (r.State != "restarting" && r.State != "running") {
			t.Errorf("round %d: %s right after the daemon serves: %s pid %d (was %d) restarts %d; want restarting or running again, restart count 1",
				round, failed, r.State, r.Pid, pids[failed], r.RestartCount)
		}
		if t.Failed() {
			t.Fatalf("daemon log:\n%s", d.logs.String())
		}
		d.must(t, "rm", "-f", self, killed, failed)
	}
}
