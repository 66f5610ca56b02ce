package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/internal/testutil"
)

// TestBackendInit runs containers under tend-init without a health check:
// the command's orphans are reaped although the command never waits, a stop
// reaches the command (which, as PID 1 itself, would ignore SIGTERM), and
// exit codes come through unchanged.
func TestBackendInit(t *testing.T) {
	env := newEngineEnv(t, nil)
	on := true

	// The inner shell exits at once, leaving two orphans that exit soon
	// after; the command then execs sleep, which never reaps.
	c := env.run(backend.CreateOptions{Name: "reaps", Init: &on,
		Cmd: []string{"sh", "-c", "sh -c 'true & true & exit 0'; exec sleep 1000"}})
	if r := env.inspect(c.ID); r.Config.Init == nil || !*r.Config.Init {
		t.Fatalf("Inspect says init %v, want true", r.Config.Init)
	}
	var out string
	deadline := time.Now().Add(10 * time.Second)
	for {
		var code int
		out, code = execOutput(env, c.ID, "ps", "-o", "pid,stat,args")
		if code != 0 {
			t.Fatalf("ps: exit %d: %s", code, out)
		}
		_, zombies := psLeftovers(out, nil)
		if len(zombies) == 0 && strings.Contains(out, "sleep 1000") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphans not reaped under tend-init:\n%s", out)
		}
		runtimeYield()
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 || !strings.Contains(lines[1], "/sbin/tend-init") || !strings.HasPrefix(strings.TrimSpace(lines[1]), "1 ") {
		t.Errorf("PID 1 is not tend-init:\n%s", out)
	}

	// SIGTERM is forwarded: sleep dies of it and tend-init reports 128+15,
	// not the SIGKILL (137) of a stop timeout.
	timeout := time.Minute
	if err := env.e.Stop(testCtx(t), c.ID, &timeout); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if r := env.inspect(c.ID); r.State != backend.StateExited || r.ExitCode != 143 {
		t.Errorf("after Stop: %s, exit %d; want exited with 143 (SIGTERM reached the command)", r.State, r.ExitCode)
	}

	c = env.run(backend.CreateOptions{Name: "exits", Init: &on, Cmd: []string{"sh", "-c", "exit 3"}})
	r := env.waitFor(c.ID, 30*time.Second, "the exit", func(r *backend.Container) bool { return r.State == backend.StateExited })
	if r.ExitCode != 3 {
		t.Errorf("exit code under tend-init %d, want 3", r.ExitCode)
	}
}

// initChild returns the host pid of the command tend-init (host pid pid)
// runs, once it runs.
func initChild(t *testing.T, pid uint32) int {
	t.Helper()
	var child int
	testutil.Poll(t, "tend-init's command to run", func() bool {
		// A child is listed under the thread that forked it.
		tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
		if err != nil || len(tasks) == 0 {
			t.Fatalf("threads of tend-init %d: %v", pid, err)
		}
		var f []string
		for _, p := range tasks {
			b, _ := os.ReadFile(p)
			f = append(f, strings.Fields(string(b))...)
		}
		if len(f) != 1 {
			return false
		}
		child, err = strconv.Atoi(f[0])
		return err == nil
	})
	return child
}

// TestBackendExitCodesFromInitAfterContainerdRestart: containers under
// tend-init exit while containerd is down, each with a code of its own.
// containerd 1.7 and 2.x delete such tasks when they start and report 255;
// the engine takes the status and time from the record tend-init left, so
// every exit is recorded with its real code on every containerd.
func TestBackendExitCodesFromInitAfterContainerdRestart(t *testing.T) {
	env := newEngineEnv(t, nil)
	on := true
	const n = 6
	var ctrs []*backend.Container
	var cmds []int
	for i := range n {
		c := env.run(backend.CreateOptions{Name: fmt.Sprintf("coded%d", i), Init: &on,
			Cmd: []string{"sh", "-c", fmt.Sprintf(`touch /dev/shm/running; while ! [ -e /dev/shm/exit ]; do sleep 0.1; done; exit %d`, 40+i)}})
		ctrs = append(ctrs, c)
		pid := initChild(t, c.Pid)
		testutil.Poll(t, "the command to run", func() bool {
			_, err := os.Stat(fmt.Sprintf("/proc/%d/root/dev/shm/running", pid))
			return err == nil
		})
		cmds = append(cmds, pid)
	}

	killContainerd(t)
	termAt := time.Now()
	// Each command exits with its own code once it sees /dev/shm/exit
	// (a tmpfs of its own: the rootfs dir is shared by every test), so
	// no signal's handling can race the shell's start.
	for _, pid := range cmds {
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/root/dev/shm/exit", pid), nil, 0o600); err != nil {
			t.Fatalf("tell command %d to exit: %v", pid, err)
		}
	}
	for _, c := range ctrs {
		hostProcessGone(t, c.Pid, 30*time.Second)
	}
	gone := time.Now()
	// The shim stamps an exit when it reaps the zombie the test saw, a
	// little after gone; an exit stamped when the engine handled it would
	// be after this gap (no synchronisation: the exits have happened).
	gap := time.NewTimer(2 * time.Second)
	<-gap.C
	startContainerd(t)

	for i, c := range ctrs {
		r := env.waitFor(c.ID, 60*time.Second, "the exit", func(c *backend.Container) bool { return c.State == backend.StateExited })
		if r.ExitCode != 40+i || r.ExitReason != "" {
			t.Errorf("%s: exit %d reason %q; want %d, no reason", r.Name, r.ExitCode, r.ExitReason, 40+i)
		}
		if r.FinishedAt.Before(termAt) || r.FinishedAt.After(gone.Add(time.Second)) {
			t.Errorf("%s: FinishedAt %v; want the exit's time, between %v and a second after %v", r.Name, r.FinishedAt, termAt, gone)
		}
		if d := env.evs.of(c.ID, "die"); len(d) != 1 || d[0].Attributes["exitCode"] != strconv.Itoa(40+i) {
			t.Errorf("%s: die events %+v; want one with exit code %d", r.Name, d, 40+i)
		}
	}
}
