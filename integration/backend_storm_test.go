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

// TestBackendContainerdRestartDuringRestartStorm kills containerd during a
// restart storm of 20 always-containers and wants every container running
// afterwards with restart counts that match the runs the containers made.
//
// The kill interrupts some NewTask calls. containerd may then have created
// the task but not started it (libcontainerd deletes such a task and creates
// it again), or, 1.6 only, have kept the new task's bundle dir but not the
// task, which fails every later NewTask of the container with "mkdir
// <bundle>: file exists" (libcontainerd removes the dir: the engine is given
// containerd's state dir).
func TestBackendContainerdRestartDuringRestartStorm(t *testing.T) {
	env := newEngineEnv(t, nil)
	const n, exits = 20, 3
	var ids []string
	for i := range n {
		c := env.run(backend.CreateOptions{Name: fmt.Sprintf("storm%d", i), Image: testEnv.ImageRef,
			Cmd: countingScript(exits, "exec sleep 1000"), Restart: backend.RestartPolicy{Name: "always"}})
		ids = append(ids, c.ID)
	}
	// Kill containerd in the middle of the storm.
	deadline := time.Now().Add(60 * time.Second)
	for {
		total := 0
		for _, id := range ids {
			total += env.inspect(id).RestartCount
		}
		if total >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("storm did not get going: %d restarts", total)
		}
		env.evs.waitChange(50 * time.Millisecond)
	}
	killContainerd(t)
	startContainerd(t)
	for _, id := range ids {
		r := env.waitFor(id, 120*time.Second, "running after its exits", func(c *backend.Container) bool {
			return c.State == backend.StateRunning && c.RestartCount >= exits
		})
		// The container counts its own runs in its snapshot.
		var out testutil.Buffer
		x, err := env.e.Exec(testCtx(t), id, backend.ExecOptions{Cmd: []string{"cat", "/runs"}, Stdout: &out})
		if err != nil {
			t.Fatalf("%s: exec: %v", r.Name, err)
		}
		if code, err := x.Wait(testCtx(t)); err != nil || code != 0 {
			t.Fatalf("%s: cat /runs: %d %v", r.Name, code, err)
		}
		runs, _ := strconv.Atoi(strings.TrimSpace(out.String()))
		if r.RestartCount != exits || runs != exits+1 {
			t.Errorf("%s: restart count %d, runs %d; want %d and %d", r.Name, r.RestartCount, runs, exits, exits+1)
		}
		if logged := strings.Count(env.logText(id), "run "); logged != runs {
			// Lost output is not a lost exit; libcontainerd keeps the
			// IO of a task that started although its Start call failed.
			t.Logf("%s: %d runs logged of %d", r.Name, logged, runs)
		}
		if d := len(env.evs.of(id, "die")); d != exits {
			t.Errorf("%s: %d die events, want %d", r.Name, d, exits)
		}
	}
	recordsAgree(t, env, rawClient(t))
}
