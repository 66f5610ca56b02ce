package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/healthcheck"
	"github.com/tendhq/tend/healthcheck/initprobe"
)

// tickScript prints 1, 2, 3... one number a line, every 100ms; the count
// lives only in the shell's memory.
const tickScript = "i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done"

// logCounts parses a counter's log: one number a line.
func logCounts(t testing.TB, text string) []int {
	t.Helper()
	var out []int
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if l == "" {
			continue
		}
		n, err := strconv.Atoi(l)
		if err != nil {
			t.Fatalf("counter log line %q: %v (log %q)", l, err, text)
		}
		out = append(out, n)
	}
	return out
}

// waitLogCount polls the container's log until the counter printed at
// least n and returns the numbers logged.
func (env *engineEnv) waitLogCount(ref string, n int) []int {
	env.t.Helper()
	deadline := time.Now().Add(counterTimeout)
	for {
		counts := logCounts(env.t, env.logText(ref))
		if len(counts) > 0 && counts[len(counts)-1] >= n {
			return counts
		}
		if time.Now().After(deadline) {
			env.t.Fatalf("counter of %s did not reach %d within %v; log %v", ref, n, counterTimeout, counts)
		}
		env.evs.waitChange(100 * time.Millisecond) // poll interval
	}
}

// TestBackendCheckpoint checkpoints a counter with exit under the always
// policy (it stays down), restores it (it counts on, in the same log, with
// its health checks), checkpoints it again leaving it running, and checks
// the errors.
func TestBackendCheckpoint(t *testing.T) {
	needCRIU(t)
	env := newEngineEnv(t, nil)
	e := env.e
	ctx := testCtx(t)
	hc := &healthcheck.Config{Test: []string{healthcheck.TestCmdShell, "true"}, Interval: 200 * time.Millisecond, Timeout: 5 * time.Second, Retries: 2}
	c := env.run(backend.CreateOptions{Name: "ticker", Image: testEnv.ImageRef, Cmd: []string{"sh", "-c", tickScript},
		Restart: backend.RestartPolicy{Name: backend.RestartAlways}, Health: hc})
	env.waitFor(c.ID, 30*time.Second, "healthy", func(r *backend.Container) bool {
		return r.Health != nil && r.Health.Status == healthcheck.StatusHealthy
	})
	env.waitLogCount(c.ID, 5)

	// Checkpoint with exit: stopped as by hand, recorded before the call
	// returns, and not restarted by the always policy.
	if err := e.CreateCheckpoint(ctx, c.Name, "cp1", false); err != nil {
		t.Fatalf("CreateCheckpoint with exit: %v", err)
	}
	r := env.inspect(c.ID)
	if r.State != backend.StateExited || r.ExitReason != "checkpointed" || !r.ManuallyStopped || r.RestartCount != 0 || r.Pid != 0 {
		t.Fatalf("after a checkpoint with exit: state %s reason %q manual %v restarts %d pid %d; want exited, checkpointed, manual, 0 restarts",
			r.State, r.ExitReason, r.ManuallyStopped, r.RestartCount, r.Pid)
	}
	if evs := env.evs.of(c.ID, "restart"); len(evs) != 0 {
		t.Fatalf("restart events after a checkpoint with exit: %+v", evs)
	}
	if dies := env.evs.of(c.ID, "die"); len(dies) != 1 || dies[0].Attributes["reason"] != "checkpointed" {
		t.Fatalf("die events %+v; want one with reason checkpointed", dies)
	}
	if cps := env.evs.of(c.ID, "checkpoint"); len(cps) != 1 || cps[0].Attributes["checkpoint"] != "cp1" {
		t.Fatalf("checkpoint events %+v; want one for cp1", cps)
	}
	before := logCounts(t, env.logText(c.ID))
	n := before[len(before)-1]
	dir := filepath.Join(env.cfg.Root, "containers", c.ID, "checkpoints", "cp1")
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("checkpoint dir %s: %v, %v; want mode 0700", dir, fi, err)
	}
	cps, err := e.ListCheckpoints(ctx, c.Name)
	if err != nil || len(cps) != 1 || cps[0].Name != "cp1" || cps[0].Created.IsZero() {
		t.Fatalf("ListCheckpoints: %+v, %v; want cp1 with its time", cps, err)
	}

	// Errors while it is down.
	wantClass(t, "CreateCheckpoint of an exited container", e.CreateCheckpoint(ctx, c.ID, "cp9", false), errdefs.ErrFailedPrecondition)
	wantClass(t, "StartFromCheckpoint of an unknown checkpoint", e.StartFromCheckpoint(ctx, c.ID, "nope"), errdefs.ErrNotFound)
	wantClass(t, "StartFromCheckpoint with a bad name", e.StartFromCheckpoint(ctx, c.ID, "../cp1"), errdefs.ErrInvalidArgument)
	wantClass(t, "DeleteCheckpoint of an unknown checkpoint", e.DeleteCheckpoint(ctx, c.ID, "nope"), errdefs.ErrNotFound)
	_, err = e.ListCheckpoints(ctx, "no-such-container")
	wantClass(t, "ListCheckpoints of an unknown container", err, errdefs.ErrNotFound)
	if r := env.inspect(c.ID); r.State != backend.StateExited {
		t.Fatalf("state after failed restores: %s; want exited", r.State)
	}

	// Restore: it counts on from n, in the same log, healthy again.
	if err := e.StartFromCheckpoint(ctx, c.Name, "cp1"); err != nil {
		t.Fatalf("StartFromCheckpoint: %v", err)
	}
	r = env.inspect(c.ID)
	if r.State != backend.StateRunning || r.ManuallyStopped || r.ExitReason != "" || r.LogPath != c.LogPath {
		t.Fatalf("after restore: state %s manual %v reason %q log %s; want running, not manual, no reason, log %s",
			r.State, r.ManuallyStopped, r.ExitReason, r.LogPath, c.LogPath)
	}
	restoredAt := r.StartedAt
	starts := env.evs.of(c.ID, "start")
	if len(starts) != 2 || starts[1].Attributes["checkpoint"] != "cp1" {
		t.Fatalf("start events %+v; want the second with checkpoint=cp1", starts)
	}
	all := env.waitLogCount(c.ID, n+5)
	after := all[len(before):]
	// A number printed right before the dump may be lost with the old
	// pipe; a counter that started again would print 1.
	if after[0] <= n || after[0] > n+2 {
		t.Fatalf("restored counter logged %v after %d; want it to go on from %d", after, n, n)
	}
	for i := 1; i < len(after); i++ {
		if after[i] != after[i-1]+1 {
			t.Fatalf("restored counter logged %v: not one by one", after)
		}
	}
	env.waitFor(c.ID, 30*time.Second, "a health probe of the restored container", func(r *backend.Container) bool {
		if r.Health == nil || r.Health.Status != healthcheck.StatusHealthy {
			return false
		}
		for _, p := range r.Health.Log {
			if p.Start.After(restoredAt) && p.ExitCode == 0 {
				return true
			}
		}
		return false
	})
	// The restored tend-init serves probes on its socket again: they do
	// not fall back to an exec each.
	if !*r.Config.Init {
		t.Fatalf("a container with a health check runs without tend-init")
	}
	sock := filepath.Join(env.cfg.Root, "containers", c.ID, "init", initprobe.SocketName)
	probe, err := initprobe.Start(ctx, sock, []string{"true"}, nil, initprobe.StartOptions{ServerPid: int(r.Pid)})
	if err != nil {
		t.Fatalf("probe through the restored tend-init: %v", err)
	}
	if code, err := probe.Wait(ctx); code != 0 || err != nil {
		t.Fatalf("probe through the restored tend-init: exit %d, %v", code, err)
	}

	// A name in use; a restore into a running container.
	wantClass(t, "CreateCheckpoint with a name in use", e.CreateCheckpoint(ctx, c.ID, "cp1", true), errdefs.ErrAlreadyExists)
	wantClass(t, "StartFromCheckpoint of a running container", e.StartFromCheckpoint(ctx, c.ID, "cp1"), errdefs.ErrFailedPrecondition)

	// Leave running: nothing changes, the counter goes on.
	pid := r.Pid
	if err := e.CreateCheckpoint(ctx, c.ID, "cp2", true); err != nil {
		t.Fatalf("CreateCheckpoint leaving it running: %v", err)
	}
	counts := logCounts(t, env.logText(c.ID))
	env.waitLogCount(c.ID, counts[len(counts)-1]+5)
	if r := env.inspect(c.ID); r.State != backend.StateRunning || r.Pid != pid || r.ManuallyStopped {
		t.Fatalf("after a checkpoint leaving it running: state %s pid %d (was %d) manual %v", r.State, r.Pid, pid, r.ManuallyStopped)
	}
	if dies := env.evs.of(c.ID, "die"); len(dies) != 1 {
		t.Fatalf("die events after a checkpoint leaving it running: %+v", dies)
	}
	cps, err = e.ListCheckpoints(ctx, c.ID)
	if err != nil || len(cps) != 2 || cps[0].Name != "cp1" || cps[1].Name != "cp2" {
		t.Fatalf("ListCheckpoints: %+v, %v; want cp1, cp2", cps, err)
	}

	if err := e.DeleteCheckpoint(ctx, c.ID, "cp1"); err != nil {
		t.Fatalf("DeleteCheckpoint: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("checkpoint dir after DeleteCheckpoint: %v; want it gone", err)
	}
	wantClass(t, "DeleteCheckpoint twice", e.DeleteCheckpoint(ctx, c.ID, "cp1"), errdefs.ErrNotFound)
	if cps, err := e.ListCheckpoints(ctx, c.ID); err != nil || len(cps) != 1 || cps[0].Name != "cp2" {
		t.Fatalf("ListCheckpoints after delete: %+v, %v; want cp2", cps, err)
	}
}

// TestBackendCheckpointWithoutInit: a container with exec probes but
// without tend-init as PID 1 has tend-init bind-mounted for its probes;
// it checkpoints and restores with that mount, and its probes are guarded
// again after the restore: nothing of them is left, although they escape
// their session and PID 1 (sleep) reaps nothing.
func TestBackendCheckpointWithoutInit(t *testing.T) {
	needCRIU(t)
	env := newEngineEnv(t, nil)
	ctx := testCtx(t)
	off := false
	c := env.run(backend.CreateOptions{
		Name: "guarded", Cmd: []string{"sleep", "999"}, Init: &off,
		Health: &healthcheck.Config{
			Test:    []string{"CMD-SHELL", probeEscapes[0].cmd},
			Timeout: 10 * time.Second, Interval: 100 * time.Millisecond, Retries: 3,
		},
	})
	waitProbesSince(t, env, c.ID, c.StartedAt, 3)
	if err := env.e.CreateCheckpoint(ctx, c.ID, "cp1", false); err != nil {
		t.Fatalf("CreateCheckpoint with exit: %v", err)
	}
	if err := env.e.StartFromCheckpoint(ctx, c.ID, "cp1"); err != nil {
		t.Fatalf("StartFromCheckpoint: %v", err)
	}
	r := env.inspect(c.ID)
	if r.State != backend.StateRunning {
		t.Fatalf("after restore: state %s; want running", r.State)
	}
	waitProbesSince(t, env, c.ID, r.StartedAt, 5)
	noProbeLeftovers(t, env, c.ID, []string{"sleep 999"}, "exec probes before a checkpoint and after its restore")
}
