package integration

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/backend"
)

// hostProcessGone polls until pid no longer exists.
func hostProcessGone(t *testing.T, pid uint32, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(b), ") Z ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still exists after %v", pid, timeout)
		}
		runtimeYield()
	}
}

// recordsAgree checks every running record against containerd's task.
func recordsAgree(t *testing.T, env *engineEnv, cc *client.Client) {
	t.Helper()
	ctx := testCtx(t)
	list, err := env.e.List(ctx, backend.ListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range list {
		ctr, err := cc.LoadContainer(ctx, r.ID)
		if err != nil {
			t.Errorf("%s: containerd container: %v", r.Name, err)
			continue
		}
		task, err := ctr.Task(ctx, nil)
		if r.State != backend.StateRunning {
			if err == nil {
				if st, _ := task.Status(ctx); st.Status == client.Running {
					t.Errorf("%s is %s in its record but its task runs", r.Name, r.State)
				}
			}
			continue
		}
		if err != nil {
			t.Errorf("%s runs in its record but containerd has no task: %v", r.Name, err)
			continue
		}
		st, err := task.Status(ctx)
		if err != nil || st.Status != client.Running || task.Pid() != r.Pid {
			t.Errorf("%s: record pid %d running; containerd pid %d status %v (%v)", r.Name, r.Pid, task.Pid(), st.Status, err)
		}
	}
}

func TestBackendLiveRestoreAfterEngineKill(t *testing.T) {
	env := newEngineEnv(t, func(c *backend.Config) {
		c.Backoff = backend.Backoff{Initial: 3 * time.Second}
	})
	env.abandon = true
	cc := rawClient(t)
	pids := map[string]uint32{}
	for i := range 10 {
		c := env.run(backend.CreateOptions{Name: fmt.Sprintf("svc%d", i), Cmd: []string{"sh", "-c", "echo up; exec sleep 1000"}, Restart: backend.RestartPolicy{Name: "always"}})
		pids[c.ID] = c.Pid
	}
	victim := env.run(backend.CreateOptions{Name: "victim", Cmd: []string{"sleep", "1000"}, Restart: backend.RestartPolicy{Name: "on-failure"}})
	var flappers []string
	for i := range 2 {
		c := env.run(backend.CreateOptions{Name: fmt.Sprintf("flap%d", i), Cmd: []string{"sh", "-c", "exit 1"}, Restart: backend.RestartPolicy{Name: "always"}})
		env.waitFor(c.ID, 20*time.Second, "a pending restart", func(c *backend.Container) bool { return c.State == backend.StateRestarting })
		flappers = append(flappers, c.ID)
	}

	env.crash()
	syscall.Kill(int(victim.Pid), syscall.SIGKILL)
	hostProcessGone(t, victim.Pid, 10*time.Second)

	env.abandon = false
	env.open()
	if errs := env.e.LoadErrors(); len(errs) != 0 {
		t.Fatalf("load errors: %v", errs)
	}
	for id, pid := range pids {
		r := env.inspect(id)
		if r.State != backend.StateRunning || r.Pid != pid || r.RestartCount != 0 {
			t.Errorf("%s: %s pid %d restarts %d; want running with pid %d", r.Name, r.State, r.Pid, r.RestartCount, pid)
		}
	}
	r := env.waitFor(victim.ID, 20*time.Second, "the exit while down, then a restart", func(c *backend.Container) bool {
		return c.RestartCount == 1 && c.State == backend.StateRunning
	})
	if r.Pid == victim.Pid {
		t.Errorf("victim kept its old pid")
	}
	if d := env.evs.of(victim.ID, "die"); len(d) != 1 || d[0].Attributes["exitCode"] != "137" {
		t.Errorf("victim die events %+v; want one with exit code 137", d)
	}
	for _, id := range flappers {
		env.waitFor(id, 20*time.Second, "the pending restart", func(c *backend.Container) bool { return c.RestartCount >= 2 })
	}
	recordsAgree(t, env, cc)
	// The log sinks were re-attached: output written after the restore
	// reaches the log.
	x, err := env.e.Exec(testCtx(t), "svc0", backend.ExecOptions{Cmd: []string{"sh", "-c", "echo from-exec > /proc/1/fd/1"}})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := x.Wait(testCtx(t)); err != nil || code != 0 {
		t.Fatalf("exec: %d %v", code, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(env.logText("svc0"), "from-exec") {
		if time.Now().After(deadline) {
			t.Fatalf("output after live-restore did not reach the log: %q", env.logText("svc0"))
		}
		env.evs.waitChange(50 * time.Millisecond)
	}
}

func TestBackendCorruptAndTornRecords(t *testing.T) {
	env := newEngineEnv(t, nil)
	good := env.run(backend.CreateOptions{Name: "good", Cmd: []string{"sleep", "1000"}})
	bad := env.create(backend.CreateOptions{Name: "bad", Cmd: []string{"true"}})
	env.shutdown()

	goodDir := filepath.Join(env.cfg.Root, "containers", good.ID)
	badPath := filepath.Join(env.cfg.Root, "containers", bad.ID, "record.json")
	if err := os.WriteFile(badPath, []byte(`{"version":1,"container":{"id":"`+bad.ID[:10]), 0o600); err != nil {
		t.Fatal(err)
	}
	// A crash between writing the temporary file and renaming it.
	stray := filepath.Join(goodDir, ".record-crashed")
	if err := os.WriteFile(stray, []byte(`{"version":1,"container":{"id":"`+good.ID+`","state":"exited"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env.open()
	errs := env.e.LoadErrors()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), badPath) {
		t.Fatalf("load errors %v; want one naming %s", errs, badPath)
	}
	var re *backend.RecordError
	if !errors.As(errs[0], &re) || re.Path != badPath {
		t.Errorf("load error is not a *RecordError for %s: %#v", badPath, errs[0])
	}
	if r := env.inspect("good"); r.State != backend.StateRunning || r.Pid != good.Pid {
		t.Errorf("good after restart: %s pid %d, want running pid %d", r.State, r.Pid, good.Pid)
	}
	if _, err := os.Stat(stray); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stray temporary record left: %v", err)
	}
	if _, err := os.Stat(badPath); err != nil {
		t.Errorf("the corrupt record was removed instead of left for inspection: %v", err)
	}
	for _, path := range []string{env.cfg.Root, goodDir, filepath.Join(goodDir, "record.json")} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o700)
		if !fi.IsDir() {
			want = 0o600
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
}

// TestBackendRestoreNeverStartedTask: the engine dies inside a start,
// between creating the task and starting it. The task never ran: after the
// engine restart it is deleted, not adopted as running, and the container
// is where its record says: created stays created; an always-container
// whose task had exited is restarted and really runs its command.
func TestBackendRestoreNeverStartedTask(t *testing.T) {
	env := newEngineEnv(t, nil)
	ctx := testCtx(t)
	idle := env.create(backend.CreateOptions{Name: "idle", Cmd: []string{"sleep", "1000"}})
	al := env.run(backend.CreateOptions{Name: "al", Cmd: []string{"sleep", "1000"}, Restart: backend.RestartPolicy{Name: "always"}})
	env.crash()

	rc := rawClient(t)
	halfMake := func(id string) {
		t.Helper()
		ctr, err := rc.LoadContainer(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if task, err := ctr.Task(ctx, nil); err == nil {
			exitCh, err := task.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := task.Kill(ctx, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-exitCh
			if _, err := task.Delete(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := ctr.NewTask(ctx, rawIO(id)); err != nil {
			t.Fatal(err)
		}
	}
	halfMake(idle.ID)
	halfMake(al.ID)

	env.open()
	if r := env.inspect("idle"); r.State != backend.StateCreated || r.Pid != 0 {
		t.Errorf("idle after the engine restart: %s pid %d; want created without pid", r.State, r.Pid)
	}
	if ctr, err := rc.LoadContainer(ctx, idle.ID); err != nil {
		t.Fatal(err)
	} else if _, err := ctr.Task(ctx, nil); !errdefs.IsNotFound(err) {
		t.Errorf("the never-started task of idle is still there: %v", err)
	}
	r := env.waitFor("al", 20*time.Second, "always to run again", func(c *backend.Container) bool {
		return c.State == backend.StateRunning && c.RestartCount == 1
	})
	// The started task's init execs the command just after Start returns.
	for deadline := time.Now().Add(10 * time.Second); ; {
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", r.Pid))
		if strings.HasPrefix(string(cmd), "sleep\x001000") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("al runs pid %d with command line %q (%v); want sleep 1000", r.Pid, cmd, err)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
	if err := env.e.Start(ctx, "idle"); err != nil {
		t.Fatal(err)
	}
	if r := env.inspect("idle"); r.State != backend.StateRunning {
		t.Errorf("idle after Start: %s", r.State)
	}
}

// TestBackendExitsWhileEngineDownRecordedAtBoot kills the engine while three
// containers run and lets each die while it is down: one exits by itself, one
// is SIGKILLed from the host, one fails under on-failure. The moment New
// returns, each record shows its exit, with the exit's own time as
// FinishedAt: containerd has the tasks as stopped, and a record that still
// says running with a dead pid would be a lie to every caller.
func TestBackendExitsWhileEngineDownRecordedAtBoot(t *testing.T) {
	env := newEngineEnv(t, func(c *backend.Config) {
		// The on-failure restart must still be pending when New returns.
		c.Backoff = backend.Backoff{Initial: time.Minute}
	})
	env.abandon = true
	// self and failed exit once the test lets them (a file in their
	// rootfs), after the engine is gone: a fixed sleep would let them exit
	// before it on a starved machine.
	waitGo := func(code string) []string {
		return []string{"sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.1; done; exit " + code}
	}
	self := env.run(backend.CreateOptions{Name: "self", Image: testEnv.ImageRef, Cmd: waitGo("42")})
	killed := env.run(backend.CreateOptions{Name: "killed", Cmd: []string{"sleep", "1000"}})
	failed := env.run(backend.CreateOptions{Name: "failed", Image: testEnv.ImageRef, Cmd: waitGo("3"), Restart: backend.RestartPolicy{Name: "on-failure"}})

	env.crash()
	released := time.Now()
	for _, c := range []*backend.Container{self, failed} {
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/root/tmp/go", c.Pid), nil, 0o600); err != nil {
			t.Fatalf("let %s exit: %v", c.Name, err)
		}
	}
	killedAt := time.Now()
	syscall.Kill(int(killed.Pid), syscall.SIGKILL)
	for _, c := range []*backend.Container{self, killed, failed} {
		hostProcessGone(t, c.Pid, 30*time.Second)
	}
	gone := time.Now()
	// An engine that took the time it handles an exit for its FinishedAt
	// would be off by at least this gap (this is no synchronisation: the
	// exits have happened).
	const gap = 3 * time.Second
	delay := time.NewTimer(gap)
	<-delay.C

	env.abandon = false
	env.open()
	// No wait: New has returned, so the records must match containerd.
	want := []struct {
		c         *backend.Container
		state     backend.State
		code      int
		minRun    time.Duration
		notBefore time.Time
		restarts  int
	}{
		{self, backend.StateExited, 42, released.Sub(self.StartedAt), released, 0},
		{killed, backend.StateExited, 137, 0, killedAt, 0},
		{failed, backend.StateRestarting, 3, released.Sub(failed.StartedAt), released, 1},
	}
	list, err := env.e.List(testCtx(t), backend.ListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]*backend.Container{}
	for _, r := range list {
		listed[r.ID] = r
	}
	for _, w := range want {
		r := env.inspect(w.c.ID)
		if r.State != w.state || r.ExitCode != w.code || r.Pid != 0 || r.RestartCount != w.restarts {
			t.Errorf("%s right after New: %s exit %d pid %d restarts %d; want %s exit %d pid 0 restarts %d",
				r.Name, r.State, r.ExitCode, r.Pid, r.RestartCount, w.state, w.code, w.restarts)
		}
		if l := listed[w.c.ID]; l == nil || l.State != r.State || !l.FinishedAt.Equal(r.FinishedAt) {
			t.Errorf("%s: List shows %+v, Inspect %s finished %v", r.Name, l, r.State, r.FinishedAt)
		}
		// The exit's own time: after the start (and the kill), and before
		// the test saw the process gone, not when the engine came back.
		if run := r.FinishedAt.Sub(r.StartedAt); r.FinishedAt.Before(w.notBefore) || run < w.minRun || r.FinishedAt.After(gone.Add(time.Second)) {
			t.Errorf("%s: FinishedAt %v (ran %v after StartedAt %v); want the exit's time, between %v and %v",
				r.Name, r.FinishedAt, run, r.StartedAt, w.notBefore, gone)
		}
		d := env.evs.of(w.c.ID, "die")
		if len(d) != 1 || d[0].Attributes["exitCode"] != strconv.Itoa(w.code) || !d[0].Time.Equal(r.FinishedAt) {
			t.Errorf("%s: die events %+v; want one with exit code %d at FinishedAt %v", r.Name, d, w.code, r.FinishedAt)
		}
	}
	recordsAgree(t, env, rawClient(t))
}
