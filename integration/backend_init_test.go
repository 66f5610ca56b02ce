package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/backend"
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
