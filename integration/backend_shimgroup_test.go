package integration

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend/backend"
)

// shimOf returns the pid of the shim started for container id (its -id
// argument): a grouped shim carries the id of the container whose start
// started it. 0 when there is none.
func shimOf(t testing.TB, id string) int {
	t.Helper()
	pid := 0
	for _, s := range shimProcs() {
		if strings.Contains(s.args+" ", " -id "+id+" ") {
			if pid != 0 {
				t.Fatalf("two shims with -id %s", id)
			}
			pid = s.pid
		}
	}
	return pid
}

// shimPidOf returns the host pid of the shim that is the parent of pid (a
// task's init: the shim reaps it as a subreaper).
func shimPidOf(t testing.TB, pid uint32) int {
	t.Helper()
	return readPPid(t, int(pid))
}

func readPPid(t testing.TB, pid int) int {
	t.Helper()
	var ppid int
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("stat of %d: %v", pid, err)
	}
	b := string(raw)
	f := strings.Fields(b[strings.LastIndexByte(b, ')')+1:])
	fmt.Sscan(f[1], &ppid)
	return ppid
}

// shimExec runs argv in container ref and returns its output, failing the
// test unless it exits 0.
func (env *engineEnv) shimExec(ref string, argv ...string) string {
	env.t.Helper()
	out, code := env.execWith(ref, backend.ExecOptions{Cmd: argv})
	if code != 0 {
		env.t.Fatalf("exec %q in %s: exit %d (%q)", argv, ref, code, out)
	}
	return out
}

// TestBackendSharedShim: with ContainersPerShim 3, three containers share
// one shim and a fourth gets another; each works as alone (logs, exec,
// pause); a SIGKILL of the shared shim ends all three, each exit is
// recorded once with a status (137 or 255, never silence), and each
// container gets its own restart policy (no: stays exited; always and
// on-failure: restarted, back in a shared shim); the fourth runs on.
func TestBackendSharedShim(t *testing.T) {
	env := newEngineEnv(t, func(cfg *backend.Config) {
		cfg.ContainersPerShim = 3
		cfg.Backoff = backend.Backoff{Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 1}
	})
	policies := []backend.RestartPolicy{
		{Name: backend.RestartNo},
		{Name: backend.RestartAlways},
		{Name: backend.RestartOnFailure, MaximumRetryCount: 3},
		{Name: backend.RestartNo},
	}
	var ctrs []*backend.Container
	for i, p := range policies {
		c := env.run(backend.CreateOptions{Name: fmt.Sprintf("grouped%d", i), Restart: p,
			Cmd: []string{"sh", "-c", fmt.Sprintf("echo hello from %d; exec sleep 100000", i)}})
		ctrs = append(ctrs, c)
	}
	group := ctrs[0].Config.ShimGroup
	if group == "" || ctrs[1].Config.ShimGroup != group || ctrs[2].Config.ShimGroup != group {
		t.Fatalf("shim groups %q %q %q: want the first three in one group", group, ctrs[1].Config.ShimGroup, ctrs[2].Config.ShimGroup)
	}
	if g := ctrs[3].Config.ShimGroup; g == "" || g == group {
		t.Fatalf("fourth container's shim group %q: want a new group (the first, %q, is full)", g, group)
	}
	shim := shimOf(t, ctrs[0].ID)
	if shim == 0 {
		t.Fatalf("no shim with -id %s", ctrs[0].ID)
	}
	for i, c := range ctrs[:3] {
		if p := shimPidOf(t, c.Pid); p != shim {
			t.Fatalf("container %d's init %d has parent %d, want the group's shim %d", i, c.Pid, p, shim)
		}
		if i > 0 && shimOf(t, c.ID) != 0 {
			t.Errorf("container %d has a shim of its own", i)
		}
	}
	other := shimPidOf(t, ctrs[3].Pid)
	if other == shim {
		t.Fatalf("the fourth container is in the full group's shim")
	}

	// Each container works as alone: logs, exec, pause.
	for i, c := range ctrs[:3] {
		env.waitFor(c.ID, 30*time.Second, "the log line", func(*backend.Container) bool {
			return strings.Contains(env.logText(c.ID), fmt.Sprintf("hello from %d", i))
		})
		if out := env.shimExec(c.ID, "echo", "exec", fmt.Sprint(i)); out != fmt.Sprintf("exec %d\n", i) {
			t.Errorf("exec in container %d: %q", i, out)
		}
	}
	ctx := testCtx(t)
	if err := env.e.Pause(ctx, ctrs[1].ID); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if r := env.inspect(ctrs[1].ID); r.State != backend.StatePaused {
		t.Fatalf("after Pause: %s", r.State)
	}
	if r := env.inspect(ctrs[0].ID); r.State != backend.StateRunning {
		t.Fatalf("a neighbour of a paused container: %s", r.State)
	}
	if err := env.e.Resume(ctx, ctrs[1].ID); err != nil {
		t.Fatalf("Unpause: %v", err)
	}

	// The shared fate: SIGKILL the group's shim, and only it.
	killedAt := time.Now()
	if err := syscall.Kill(shim, syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL shim %d: %v", shim, err)
	}
	exited := env.waitFor(ctrs[0].ID, 60*time.Second, "the exit of the restart=no container", func(c *backend.Container) bool {
		return c.State == backend.StateExited
	})
	if exited.ExitCode != 137 && exited.ExitCode != 255 {
		t.Errorf("exit after its shim was killed: %d (%q); want 137 or 255", exited.ExitCode, exited.ExitReason)
	}
	if exited.ExitCode == 255 && exited.ExitReason == "" {
		t.Errorf("exit status 255 without a reason")
	}
	for i, c := range ctrs[1:3] {
		r := env.waitFor(c.ID, 60*time.Second, "the restart", func(c *backend.Container) bool {
			return c.State == backend.StateRunning && c.RestartCount == 1
		})
		if r.StartedAt.Before(killedAt) {
			t.Errorf("container %d: running since %v, before the kill", i+1, r.StartedAt)
		}
		if p := shimPidOf(t, r.Pid); p == shim {
			t.Errorf("container %d restarted under the killed shim", i+1)
		}
	}
	if r := env.inspect(ctrs[3].ID); r.State != backend.StateRunning || r.Pid != ctrs[3].Pid || r.RestartCount != 0 {
		t.Errorf("the container of the other shim: %s pid %d restarts %d; want running on, pid %d", r.State, r.Pid, r.RestartCount, ctrs[3].Pid)
	}
	// The two restarted ones are in one shim again: their group's.
	r1, r2 := env.inspect(ctrs[1].ID), env.inspect(ctrs[2].ID)
	if p1, p2 := shimPidOf(t, r1.Pid), shimPidOf(t, r2.Pid); p1 != p2 {
		t.Errorf("restarted containers in shims %d and %d; want their group's one", p1, p2)
	}
	// Exactly one exit each.
	for i, c := range ctrs[:3] {
		if d := env.evs.of(c.ID, "die"); len(d) != 1 {
			t.Errorf("container %d: %d die events %v; want 1", i, len(d), d)
		}
	}
	if d := env.evs.of(ctrs[3].ID, "die"); len(d) != 0 {
		t.Errorf("container of the other shim: die events %v", d)
	}
}

// TestBackendShimGroupExplicit: a ShimGroup given at create is kept as
// given (not packed), survives an engine restart (live-restore), and a
// malformed one is refused.
func TestBackendShimGroupExplicit(t *testing.T) {
	env := newEngineEnv(t, nil)
	a := env.run(backend.CreateOptions{Name: "ga", ShimGroup: "web", Cmd: []string{"sleep", "100000"}})
	b := env.run(backend.CreateOptions{Name: "gb", ShimGroup: "web", Cmd: []string{"sleep", "100000"}})
	if a.Config.ShimGroup != "web" || b.Config.ShimGroup != "web" {
		t.Fatalf("groups %q %q, want web", a.Config.ShimGroup, b.Config.ShimGroup)
	}
	if pa, pb := shimPidOf(t, a.Pid), shimPidOf(t, b.Pid); pa != pb {
		t.Fatalf("group web in shims %d and %d", pa, pb)
	}
	env.shutdown()
	env.open()
	r := env.inspect(b.ID)
	if r.State != backend.StateRunning || r.Pid != b.Pid || r.Config.ShimGroup != "web" {
		t.Fatalf("after live-restore: %s pid %d group %q; want running, pid %d, web", r.State, r.Pid, r.Config.ShimGroup, b.Pid)
	}
	if out := env.shimExec(b.ID, "echo", "restored"); out != "restored\n" {
		t.Errorf("exec after live-restore: %q", out)
	}
	// Stop and start again: back in its group's shim.
	ctx := testCtx(t)
	if err := env.e.Stop(ctx, b.ID, nil); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := env.e.Start(ctx, b.ID); err != nil {
		t.Fatalf("Start: %v", err)
	}
	r = env.inspect(b.ID)
	if pa, pb := shimPidOf(t, a.Pid), shimPidOf(t, r.Pid); pa != pb {
		t.Errorf("restarted member in shim %d, its group's is %d", pb, pa)
	}
	if _, err := env.e.Create(ctx, backend.CreateOptions{ShimGroup: "../x", Cmd: []string{"true"}, Rootfs: testEnv.Rootfs}); err == nil {
		t.Errorf("Create with shim group ../x: no error")
	}
}
