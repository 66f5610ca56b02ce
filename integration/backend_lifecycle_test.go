package integration

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/internal/testutil"
	"github.com/tendhq/tend/io/jsonlog"
)

func TestBackendLifecycle(t *testing.T) {
	env := newEngineEnv(t, nil)
	ctx := testCtx(t)
	c := env.run(backend.CreateOptions{Name: "life", Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, Labels: map[string]string{"app": "x"}})
	code, err := env.e.Wait(ctx, c.ID, backend.WaitNotRunning)
	if err != nil || code != 3 {
		t.Fatalf("Wait: %d, %v", code, err)
	}
	r := env.inspect("life")
	if r.State != backend.StateExited || r.ExitCode != 3 || r.Pid != 0 || r.FinishedAt.IsZero() {
		t.Fatalf("record %+v", r)
	}
	var entries []jsonlog.Entry
	if err := env.e.Logs(ctx, c.ID, backend.LogsOptions{Tail: -1}, func(en jsonlog.Entry) error { entries = append(entries, en); return nil }); err != nil {
		t.Fatal(err)
	}
	streams := map[string]string{}
	for _, en := range entries {
		streams[en.Stream] += en.Log
	}
	if streams["stdout"] != "out\n" || streams["stderr"] != "err\n" {
		t.Errorf("log %+v", entries)
	}
	for _, typ := range []string{"create", "start", "die"} {
		if len(env.evs.of(c.ID, typ)) != 1 {
			t.Errorf("want one %s event, have %d", typ, len(env.evs.of(c.ID, typ)))
		}
	}
	if d := env.evs.of(c.ID, "die"); len(d) == 1 && d[0].Attributes["exitCode"] != "3" {
		t.Errorf("die attributes %v", d[0].Attributes)
	}
	// Started again on the same record and log.
	if err := env.e.Start(ctx, "life"); err != nil {
		t.Fatal(err)
	}
	if code, err := env.e.Wait(ctx, "life", backend.WaitNotRunning); err != nil || code != 3 {
		t.Fatalf("second Wait: %d, %v", code, err)
	}
	if got := env.logText("life"); strings.Count(got, "out\n") != 2 {
		t.Errorf("log after two runs: %q", got)
	}
	if err := env.e.Remove(ctx, "life", false); err != nil {
		t.Fatal(err)
	}
	if _, err := env.e.Inspect(ctx, c.ID); !errdefs.IsNotFound(err) {
		t.Errorf("Inspect after Remove: %v", err)
	}
	if len(env.evs.of(c.ID, "destroy")) != 1 {
		t.Errorf("no destroy event")
	}
}

func TestBackendStopKillPauseExecTop(t *testing.T) {
	env := newEngineEnv(t, nil)
	ctx := testCtx(t)
	c := env.run(backend.CreateOptions{Name: "svc", Cmd: []string{"sleep", "1000"}, Restart: backend.RestartPolicy{Name: "always"}})
	if c.State != backend.StateRunning || c.Pid == 0 {
		t.Fatalf("after Start: %+v", c)
	}
	if err := env.e.Pause(ctx, "svc"); err != nil {
		t.Fatal(err)
	}
	if _, err := env.e.Exec(ctx, "svc", backend.ExecOptions{Cmd: []string{"true"}}); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("exec in paused: %v", err)
	}
	if err := env.e.Pause(ctx, "svc"); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("second pause: %v", err)
	}
	if err := env.e.Resume(ctx, "svc"); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	x, err := env.e.Exec(ctx, "svc", backend.ExecOptions{Cmd: []string{"sh", "-c", "echo $FOO; exit 4"}, Env: []string{"FOO=bar"}, Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := x.Wait(ctx); err != nil || code != 4 || out.String() != "bar\n" {
		t.Errorf("exec: %d %v %q", code, err, out.String())
	}
	top, err := env.e.Top(ctx, "svc")
	if err != nil || len(top) != 1 || top[0].Pid != c.Pid || !strings.Contains(top[0].Command, "sleep 1000") {
		t.Errorf("Top: %+v %v", top, err)
	}
	st, err := env.e.Stats(ctx, "svc")
	if err != nil || st.Pids.Current != 1 {
		t.Errorf("Stats: %+v %v", st, err)
	}
	timeout := 2 * time.Second
	start := time.Now()
	if err := env.e.Stop(ctx, "svc", &timeout); err != nil {
		t.Fatal(err)
	}
	r := env.inspect("svc")
	// sleep as pid 1 ignores SIGTERM: the stop ends with SIGKILL.
	if r.State != backend.StateExited || r.ExitCode != 137 || !r.ManuallyStopped || time.Since(start) < timeout {
		t.Errorf("after Stop: state %s exit %d manual %v after %v", r.State, r.ExitCode, r.ManuallyStopped, time.Since(start))
	}
	if err := env.e.Kill(ctx, "svc", syscall.SIGKILL); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("kill of stopped: %v", err)
	}
	if err := env.e.Stop(ctx, "svc", nil); err != nil {
		t.Errorf("stop of stopped: %v", err)
	}
	// A manual stop is never undone by the policy.
	wctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := env.e.Wait(wctx, "svc", backend.WaitNextExit); err == nil {
		t.Errorf("container ran and exited again after a manual stop")
	}
	if r := env.inspect("svc"); r.State != backend.StateExited || r.RestartCount != 0 {
		t.Errorf("after a manual stop: %s, restarts %d", r.State, r.RestartCount)
	}
}

func TestBackendAttachAndFollow(t *testing.T) {
	env := newEngineEnv(t, nil)
	ctx := testCtx(t)
	c := env.create(backend.CreateOptions{Name: "cat", Cmd: []string{"sh", "-c", "while read l; do echo got $l; done; echo bye"}, OpenStdin: true})
	if err := env.e.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	pr, pw := ioPipe()
	out := &testutil.Buffer{}
	detach, err := env.e.Attach(ctx, c.ID, backend.AttachOptions{Stdin: pr, Stdout: out})
	if err != nil {
		t.Fatal(err)
	}
	defer detach()
	followed := make(chan string, 1)
	go func() {
		var b strings.Builder
		err := env.e.Logs(ctx, c.ID, backend.LogsOptions{Follow: true, Tail: -1}, func(en jsonlog.Entry) error { b.WriteString(en.Log); return nil })
		if err != nil {
			b.WriteString("ERR " + err.Error())
		}
		followed <- b.String()
	}()
	pw.Write([]byte("a\nb\n"))
	pw.Close()
	if code, err := env.e.Wait(ctx, c.ID, backend.WaitNotRunning); err != nil || code != 0 {
		t.Fatalf("Wait: %d %v", code, err)
	}
	want := "got a\ngot b\nbye\n"
	if got := out.String(); got != want {
		t.Errorf("attached output %q, want %q", got, want)
	}
	select {
	case got := <-followed:
		if got != want {
			t.Errorf("followed log %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Logs -f did not end when the container stopped")
	}
}

// TestBackendForceRemoveWhileRestarting: rm -f of a container that crashes
// and restarts as fast as it can: whatever moment the removal hits (a task
// that just ended, its exit on the way, or a restart pending), it succeeds.
func TestBackendForceRemoveWhileRestarting(t *testing.T) {
	env := newEngineEnv(t, func(cfg *backend.Config) {
		cfg.Backoff = backend.Backoff{Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 1}
	})
	for i := range 8 {
		name := fmt.Sprintf("flapper%d", i)
		c := env.run(backend.CreateOptions{Name: name, Image: "busybox", Cmd: []string{"sh", "-c", "exit 3"},
			Restart: backend.RestartPolicy{Name: "always"}})
		env.waitFor(c.ID, 30*time.Second, "a few restarts", func(c *backend.Container) bool { return c.RestartCount >= 2 })
		if err := env.e.Remove(testCtx(t), name, true); err != nil {
			t.Fatalf("Remove(force) of a flapping container: %v", err)
		}
		if _, err := env.e.Inspect(testCtx(t), c.ID); !errdefs.IsNotFound(err) {
			t.Fatalf("Inspect after removal: %v, want NotFound", err)
		}
	}
}

// TestBackendStartBadCommand: a command that does not exist or cannot be
// run is the caller's error (invalid argument, as Docker's 400), and the
// container stays created with the error in its record and no task left:
// it can be started again, and removed without force.
func TestBackendStartBadCommand(t *testing.T) {
	env := newEngineEnv(t, nil)
	ctx := testCtx(t)
	for _, tc := range []struct {
		name string
		cmd  []string
	}{
		{"missing", []string{"no-such-command"}},
		{"missing-path", []string{"/bin/no-such-command"}},
		{"directory", []string{"/etc"}},
	} {
		c := env.create(backend.CreateOptions{Name: "bad-" + tc.name, Cmd: tc.cmd})
		for i := range 2 { // no task is left in the way of a second try
			err := env.e.Start(ctx, c.ID)
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("%s: Start #%d: %v, want invalid argument", tc.name, i+1, err)
			}
			r := env.inspect(c.ID)
			if r.State != backend.StateCreated || r.Error == "" || r.Pid != 0 {
				t.Errorf("%s: after a failed start: state %s, error %q, pid %d; want created with the error", tc.name, r.State, r.Error, r.Pid)
			}
		}
		if err := env.e.Remove(ctx, c.ID, false); err != nil {
			t.Errorf("%s: Remove: %v", tc.name, err)
		}
	}
}

// TestBackendAttachStdinDataThenEOF: an attacher whose stdin ends right
// after its data (a piped `echo x | engine attach`) delivers all of it
// before the process sees EOF, every time: the EOF used to close the FIFO
// while the copy still held the last bytes.
func TestBackendAttachStdinDataThenEOF(t *testing.T) {
	env := newEngineEnv(t, nil)
	ctx := testCtx(t)
	for i := range 20 {
		c := env.create(backend.CreateOptions{Cmd: []string{"sh", "-c", "read x; echo got $x"}, OpenStdin: true})
		if err := env.e.Start(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		out := &testutil.Buffer{}
		detach, err := env.e.Attach(ctx, c.ID, backend.AttachOptions{Stdin: strings.NewReader(fmt.Sprintf("hello%d\n", i)), Stdout: out})
		if err != nil {
			t.Fatal(err)
		}
		if code, err := env.e.Wait(ctx, c.ID, backend.WaitNotRunning); err != nil || code != 0 {
			t.Fatalf("round %d: Wait: %d %v", i, code, err)
		}
		detach()
		if got, want := out.String(), fmt.Sprintf("got hello%d\n", i); got != want {
			t.Errorf("round %d: attached output %q, want %q", i, got, want)
		}
	}
}
