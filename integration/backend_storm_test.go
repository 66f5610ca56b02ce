package integration

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/internal/testutil"
)

// stormExits is how many times each storm container's command exits (code
// 1) before it stays up.
const stormExits = 3

// startStorm runs n always-containers that exit stormExits times each
// before they stay up, and returns once the storm is going (n restarts in
// all).
func startStorm(t *testing.T, env *engineEnv, n int, opts backend.CreateOptions) []string {
	t.Helper()
	var ids []string
	for i := range n {
		o := opts
		o.Name, o.Image = fmt.Sprintf("storm%d", i), testEnv.ImageRef
		o.Cmd = countingScript(stormExits, "exec sleep 1000")
		o.Restart = backend.RestartPolicy{Name: "always"}
		ids = append(ids, env.run(o).ID)
	}
	// A starved machine makes the storm slow, not stuck: the deadline is
	// for the next restart, not for all of them.
	const stall = 60 * time.Second
	deadline, last := time.Now().Add(stall), 0
	for {
		total := 0
		for _, id := range ids {
			total += env.inspect(id).RestartCount
		}
		if total >= n {
			return ids
		}
		if total > last {
			deadline, last = time.Now().Add(stall), total
		}
		if time.Now().After(deadline) {
			t.Fatalf("storm did not get going: %d restarts, none for %v", total, stall)
		}
		env.evs.waitChange(50 * time.Millisecond)
	}
}

// stormSettled wants every storm container running after its exits, with a
// restart count that accounts for every run it made (the container counts
// its own runs in its snapshot). With dies, each must also have had one die
// event per exit (the events of an engine that ran the whole storm).
func stormSettled(t *testing.T, env *engineEnv, ids []string, dies bool) {
	t.Helper()
	settled := func(c *backend.Container) bool {
		return c.State == backend.StateRunning && c.RestartCount >= stormExits
	}
	// The storm may crawl on a starved machine: wait as long as it makes
	// progress (a restart or a container settling), and no longer than a
	// stall of two minutes.
	const stall = 120 * time.Second
	type mark struct{ restarts, settled int }
	deadline, last := time.Now().Add(stall), mark{-1, -1}
	for {
		var progress mark
		for _, id := range ids {
			c := env.inspect(id)
			progress.restarts += c.RestartCount
			if settled(c) {
				progress.settled++
			}
		}
		if progress.settled == len(ids) || time.Now().After(deadline) {
			break // waitFor below says which container is stuck
		}
		if progress != last {
			deadline, last = time.Now().Add(stall), progress
		}
		env.evs.waitChange(50 * time.Millisecond)
	}
	for _, id := range ids {
		r := env.waitFor(id, 10*time.Second, "running after its exits", settled)
		var out testutil.Buffer
		x, err := env.e.Exec(testCtx(t), id, backend.ExecOptions{Cmd: []string{"cat", "/runs"}, Stdout: &out})
		if err != nil {
			t.Fatalf("%s: exec: %v", r.Name, err)
		}
		if code, err := x.Wait(testCtx(t)); err != nil || code != 0 {
			t.Fatalf("%s: cat /runs: %d %v", r.Name, code, err)
		}
		runs, _ := strconv.Atoi(strings.TrimSpace(out.String()))
		failed := runcInitFailures(env.logText(id))
		if r.RestartCount != stormExits+failed || runs != stormExits+1 {
			t.Errorf("%s: restart count %d, runs %d (/runs %q), runc init failures %d; want %d and %d; log:\n%s", r.Name, r.RestartCount, runs, out.String(), failed, stormExits+failed, stormExits+1, env.logText(id))
		}
		if logged := strings.Count(env.logText(id), "run "); logged != runs {
			// Lost output is not a lost exit; libcontainerd keeps the
			// IO of a task that started although its Start call failed.
			t.Logf("%s: %d runs logged of %d", r.Name, logged, runs)
		}
		if d := len(env.evs.of(id, "die")); dies && d != stormExits+failed {
			t.Errorf("%s: %d die events, want %d", r.Name, d, stormExits+failed)
		}
	}
	recordsAgree(t, env, rawClient(t))
}

// runcInitFailures counts the starts whose runc init failed before it ran
// the command, from the errors runc's init writes to the container's
// output. A kill of containerd cuts off the shim's `runc start` (the
// shim's call ends with containerd's connection); when that happens after
// `runc start` opened the exec FIFO and before it read it, the waiting init
// fails with "write exec fifo ...: broken pipe" and exits. That task was
// created and exited: its exit is delivered once and counted as a restart,
// as Docker counts a restart whose start failed, but the command never ran.
func runcInitFailures(log string) int {
	n := 0
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "write exec fifo ") || strings.Contains(l, "open exec fifo ") {
			n++
		}
	}
	return n
}

// TestBackendContainerdRestartDuringRestartStorm kills containerd during a
// restart storm of 20 always-containers and wants every container running
// afterwards with restart counts that match the runs the containers made.
//
// The kill interrupts some NewTask and Start calls. containerd may then have
// created the task but not started it (libcontainerd deletes such a task
// and creates it again), or, 1.6 only, have kept the new task's bundle dir
// but not the task, which fails every later NewTask of the container with
// "mkdir <bundle>: file exists" (libcontainerd removes the dir: the engine
// is given containerd's state dir). On 1.7 and 2.x a task whose Start was
// cut off may have run and exited while containerd was down: containerd
// removes it as it loads, and libcontainerd counts it as started.
func TestBackendContainerdRestartDuringRestartStorm(t *testing.T) {
	env := newEngineEnv(t, nil)
	ids := startStorm(t, env, 20, backend.CreateOptions{})
	killContainerd(t)
	startContainerd(t)
	stormSettled(t, env, ids, true)
}

// TestBackendEngineAndContainerdKilledDuringRestartStorm kills the engine
// and then containerd during a restart storm, starts both again, and wants
// the same: every run counted once.
//
// The engine's death leaves starts it had begun but not recorded: their
// records say restarting. When containerd 1.7 or 2.x comes back it removes
// the task of such a start if the run ended while it was down, so the engine
// finds no task and nothing in containerd says whether the run happened. The
// containers run under tend-init, whose exit record says it did (the engine
// clears the record before each start). Without tend-init such a run would
// go uncounted on 1.7 and 2.x.
//
// containerd 1.6 keeps, across its restart, a stopped task whose exit the
// engine recorded but could not delete: the engine after the crash must not
// count that exit again (it compares the task's exit time with the record's).
func TestBackendEngineAndContainerdKilledDuringRestartStorm(t *testing.T) {
	env := newEngineEnv(t, nil)
	env.abandon = true
	init := true
	ids := startStorm(t, env, 10, backend.CreateOptions{Init: &init})
	env.crash()
	killContainerd(t)
	startContainerd(t)
	env.abandon = false
	env.open()
	if errs := env.e.LoadErrors(); len(errs) != 0 {
		t.Fatalf("load errors: %v", errs)
	}
	// The die events of the first engine died with it.
	stormSettled(t, env, ids, false)
}
