package integration

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/libcontainerd"
)

// flush runs a short marker container to its exit. Events are published in
// order, so once the marker's exit is delivered every event published before
// it (a duplicate exit, say) has reached the Backend too.
func flush(t *testing.T, c libcontainerd.Client, rec *recorder) {
	t.Helper()
	ctx := testCtx(t)
	id := fmt.Sprintf("%s-flush-%d", testID(t), time.Now().UnixNano())
	mustCreate(t, c, id, rootfsSpec(t, id, "true"))
	if _, err := c.Start(ctx, id); err != nil {
		t.Fatalf("flush marker: %v", err)
	}
	rec.wait(t, id, "", libcontainerd.EventExit, 1, 30*time.Second)
}

// startSleeper starts a container that runs until killed and returns its pid.
func startSleeper(t *testing.T, c libcontainerd.Client, id string) uint32 {
	t.Helper()
	mustCreate(t, c, id, rootfsSpec(t, id, "sleep", "100000"))
	pid, err := c.Start(testCtx(t), id)
	if err != nil {
		t.Fatalf("Start %s: %v", id, err)
	}
	return pid
}

// hostKill kills a container's process from the host, behind containerd's back.
func hostKill(t *testing.T, pid uint32) {
	t.Helper()
	if err := syscall.Kill(int(pid), syscall.SIGKILL); err != nil {
		t.Fatalf("kill %d: %v", pid, err)
	}
}

// waitStopped waits until containerd reports the task of id stopped: a
// SIGKILL is handled by the shim asynchronously.
func waitStopped(t *testing.T, id string) {
	t.Helper()
	ctx := testCtx(t)
	rc := rawClient(t)
	defer rc.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st client.Status
		ctr, err := rc.LoadContainer(ctx, id)
		if err == nil {
			var task client.Task
			if task, err = ctr.Task(ctx, nil); err == nil {
				st, err = task.Status(ctx)
			}
		}
		if err == nil && st.Status == client.Stopped {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s not stopped 30s after its SIGKILL: %+v, %v", id, st, err)
		}
		runtimeYield()
	}
}

// wantKilledOrLost accepts the exit of a container SIGKILLed while
// containerd was down: 137 where containerd kept the task (1.6), unknown
// status with a reason where it cleaned it up at restart (1.7, 2.x).
func wantKilledOrLost(t *testing.T, exit libcontainerd.EventInfo) {
	t.Helper()
	if exit.ExitCode == 137 || (exit.ExitCode == libcontainerd.ExitCodeUnknown && exit.Reason != "") {
		return
	}
	t.Fatalf("exit %+v: want 137, or unknown status with a reason on a containerd that dropped the task", exit)
}

func exactlyOneExit(t *testing.T, rec *recorder, id string, code uint32) libcontainerd.EventInfo {
	t.Helper()
	exits := rec.matching(id, "", libcontainerd.EventExit)
	if len(exits) != 1 {
		t.Fatalf("%s: %d exit events %+v, want exactly one", id, len(exits), exits)
	}
	if exits[0].ExitCode != code {
		t.Fatalf("%s: exit %+v, want code %d", id, exits[0], code)
	}
	return exits[0]
}

// TestExitWhileContainerdDown: containerd is SIGKILLed while a container
// runs, the container dies while containerd is down, containerd comes back:
// exactly one exit with the right code reaches the Backend.
func TestExitWhileContainerdDown(t *testing.T) {
	rec := newRecorder()
	c := newClient(t, rec)
	id := testID(t)
	pid := startSleeper(t, c, id)
	rec.wait(t, id, "", libcontainerd.EventStart, 1, 10*time.Second)

	killContainerd(t)
	hostKill(t, pid)
	startContainerd(t)

	exit := rec.wait(t, id, "", libcontainerd.EventExit, 1, 60*time.Second)[0]
	wantKilledOrLost(t, exit)
	flush(t, c, rec)
	exactlyOneExit(t, rec, id, exit.ExitCode)
}

// TestExitAfterContainerdRestart: the container outlives a containerd
// SIGKILL and a graceful restart and exits afterwards: one exit.
func TestExitAfterContainerdRestart(t *testing.T) {
	rec := newRecorder()
	c := newClient(t, rec)
	ctx := testCtx(t)
	id := testID(t)
	pid := startSleeper(t, c, id)

	killContainerd(t)
	startContainerd(t)
	restartContainerd(t)

	// The task survived with the same pid and is still driven by the client.
	pids, err := c.ListPids(ctx, id)
	if err != nil || len(pids) == 0 || pids[0] != pid {
		t.Fatalf("after restarts ListPids = %v, %v; want [%d]", pids, err, pid)
	}
	// sleep runs as the container's pid 1, which ignores SIGTERM.
	if err := c.SignalProcess(ctx, id, "", syscall.SIGKILL); err != nil {
		t.Fatalf("SignalProcess after restart: %v", err)
	}
	rec.wait(t, id, "", libcontainerd.EventExit, 1, 60*time.Second)
	flush(t, c, rec)
	exactlyOneExit(t, rec, id, 137)
}

// TestExitDuringReconnect: containerd comes back and the container exits at
// once, while the client is still reconnecting.
func TestExitDuringReconnect(t *testing.T) {
	rec := newRecorder()
	c := newClient(t, rec)
	ids := []string{testID(t) + "-a", testID(t) + "-b"}
	pids := []uint32{startSleeper(t, c, ids[0]), startSleeper(t, c, ids[1])}

	killContainerd(t)
	hostKill(t, pids[0]) // exits while containerd is down
	startContainerd(t)
	hostKill(t, pids[1]) // exits while the client reconnects

	for _, id := range ids {
		rec.wait(t, id, "", libcontainerd.EventExit, 1, 60*time.Second)
	}
	flush(t, c, rec)
	wantKilledOrLost(t, exactlyOneExit(t, rec, ids[0], rec.matching(ids[0], "", libcontainerd.EventExit)[0].ExitCode))
	exactlyOneExit(t, rec, ids[1], 137)
}

// TestExitDeliveredBeforeContainerdLostTheTask: a container exits, its exit
// is delivered, then containerd is SIGKILLed before the task is deleted and
// comes back. containerd 1.7 and 2.x remove the task as they load (its shim
// has no process left); DeleteTask then returns the status the Backend was
// given, not an unknown one, and no second exit is delivered.
func TestExitDeliveredBeforeContainerdLostTheTask(t *testing.T) {
	rec := newRecorder()
	c := newClient(t, rec)
	ctx := testCtx(t)
	id := testID(t)
	mustCreate(t, c, id, rootfsSpec(t, id, "sh", "-c", "exit 7"))
	if _, err := c.Start(ctx, id); err != nil {
		t.Fatalf("Start: %v", err)
	}
	exit := rec.wait(t, id, "", libcontainerd.EventExit, 1, 30*time.Second)[0]
	if exit.ExitCode != 7 {
		t.Fatalf("exit %+v, want code 7", exit)
	}

	killContainerd(t)
	startContainerd(t)

	code, at, err := c.DeleteTask(ctx, id)
	if err != nil || code != 7 || !at.Equal(exit.ExitedAt) {
		t.Fatalf("DeleteTask after containerd restart = %d %v %v; want 7 at %v", code, at, err, exit.ExitedAt)
	}
	flush(t, c, rec)
	exactlyOneExit(t, rec, id, 7)
}

// TestOOM: a container over its 16 MiB limit is killed; the Backend sees one
// OOM and an exit that says OOMKilled.
func TestOOM(t *testing.T) {
	rec := newRecorder()
	c := newClient(t, rec)
	id := testID(t)
	spec := rootfsSpec(t, id, "tail", "/dev/zero")
	limit := int64(16 << 20)
	spec.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit, Swap: &limit}}
	mustCreate(t, c, id, spec)
	if _, err := c.Start(testCtx(t), id); err != nil {
		t.Fatal(err)
	}
	exit := rec.wait(t, id, "", libcontainerd.EventExit, 1, 60*time.Second)[0]
	if exit.ExitCode != 137 || !exit.OOMKilled {
		t.Fatalf("exit %+v: want 137 and OOMKilled", exit)
	}
	flush(t, c, rec)
	if n := len(rec.matching(id, "", libcontainerd.EventOOM)); n != 1 {
		t.Fatalf("%d OOM events, want exactly 1", n)
	}
	exactlyOneExit(t, rec, id, 137)

	// A SIGKILL that is not the OOM killer's is not taken for one.
	killed := id + "-killed"
	spec = rootfsSpec(t, killed, "sleep", "1000")
	spec.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit, Swap: &limit}}
	mustCreate(t, c, killed, spec)
	if _, err := c.Start(testCtx(t), killed); err != nil {
		t.Fatal(err)
	}
	if err := c.SignalProcess(testCtx(t), killed, "", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if exit := rec.wait(t, killed, "", libcontainerd.EventExit, 1, 30*time.Second)[0]; exit.ExitCode != 137 || exit.OOMKilled {
		t.Fatalf("exit %+v: want 137, not OOMKilled", exit)
	}
}

// TestManyExitsAtOnce: 50 containers killed at the same moment give 50
// exits, none lost, none twice.
func TestManyExitsAtOnce(t *testing.T) {
	const n = 50
	rec := newRecorder()
	c := newClient(t, rec)
	ctx := testCtx(t)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%02d", testID(t), i)
		startSleeper(t, c, ids[i])
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, n)
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs <- c.SignalProcess(ctx, id, "", syscall.SIGKILL)
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("SignalProcess: %v", err)
		}
	}
	for _, id := range ids {
		rec.wait(t, id, "", libcontainerd.EventExit, 1, 60*time.Second)
	}
	flush(t, c, rec)
	wantKilledOrLost(t, exactlyOneExit(t, rec, ids[0], rec.matching(ids[0], "", libcontainerd.EventExit)[0].ExitCode))
	exactlyOneExit(t, rec, ids[1], 137)
}

// TestRestore: a second client (a restarted engine) re-attaches to a task
// that outlived the first, and learns of one that exited in between.
func TestRestore(t *testing.T) {
	ctx := testCtx(t)
	rec1 := newRecorder()
	c1, err := libcontainerd.New(ctx, testEnv.Address, testEnv.Namespace, rec1, libcontainerd.WithFIFODir(testEnv.FIFORoot))
	if err != nil {
		t.Fatal(err)
	}
	alive, dead := testID(t)+"-alive", testID(t)+"-dead"
	alivePid := startSleeper(t, c1, alive)
	deadPid := startSleeper(t, c1, dead)
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}
	hostKill(t, deadPid) // exits while no engine watches
	waitStopped(t, dead) // before the new client looks: "exited in between"

	rec2 := newRecorder()
	c2 := newClient(t, rec2)
	res, err := c2.Restore(ctx, alive)
	if err != nil || !res.Alive || res.Pid != alivePid {
		t.Fatalf("Restore(alive) = %+v, %v; want alive with pid %d", res, err, alivePid)
	}
	res, err = c2.Restore(ctx, dead)
	if err != nil || res.Alive || res.ExitCode != 137 {
		t.Fatalf("Restore(dead) = %+v, %v; want exited with 137", res, err)
	}
	rec2.wait(t, dead, "", libcontainerd.EventExit, 1, 30*time.Second)

	// The restored task is driven like any other and its exit arrives once.
	if s, err := c2.Status(ctx, alive); err != nil || s != libcontainerd.StatusRunning {
		t.Fatalf("Status of restored task: %s, %v", s, err)
	}
	if err := c2.SignalProcess(ctx, alive, "", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	rec2.wait(t, alive, "", libcontainerd.EventExit, 1, 30*time.Second)
	flush(t, c2, rec2)
	exactlyOneExit(t, rec2, alive, 137)
	exactlyOneExit(t, rec2, dead, 137)
	if n := len(rec1.matching(dead, "", libcontainerd.EventExit)); n != 0 {
		t.Fatalf("closed client delivered %d exits after Close", n)
	}

	// A container never started has no task to restore.
	idle := testID(t) + "-idle"
	mustCreate(t, c2, idle, rootfsSpec(t, idle, "true"))
	_, err = c2.Restore(ctx, idle)
	wantClass(t, "Restore without task", err, errdefs.ErrNotFound)

	// A task created but never started (the engine died inside Start) is
	// not alive: Restore refuses it, DeleteTask removes it, Start works.
	rc := rawClient(t)
	ctr, err := rc.LoadContainer(ctx, idle)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ctr.NewTask(ctx, rawIO(idle)); err != nil {
		t.Fatal(err)
	}
	_, err = c2.Restore(ctx, idle)
	wantClass(t, "Restore of a never-started task", err, errdefs.ErrFailedPrecondition)
	if _, _, err := c2.DeleteTask(ctx, idle); err != nil {
		t.Fatalf("DeleteTask of a never-started task: %v", err)
	}
	if s, err := c2.Status(ctx, idle); err != nil || s != libcontainerd.StatusNoTask {
		t.Fatalf("Status after deleting the never-started task: %s, %v", s, err)
	}
	if _, err := c2.Start(ctx, idle); err != nil {
		t.Fatal(err)
	}
	rec2.wait(t, idle, "", libcontainerd.EventExit, 1, 30*time.Second)
	flush(t, c2, rec2)
	exactlyOneExit(t, rec2, idle, 0)
	// A task that did run is the client's to restore, not to delete blind.
	c3 := newClient(t, newRecorder())
	_, _, err = c3.DeleteTask(ctx, idle)
	wantClass(t, "DeleteTask of another run's stopped task", err, errdefs.ErrFailedPrecondition)
}

// TestStaleTaskBundle: containerd 1.6 killed during a NewTask, before the
// shim created the task, keeps the task's bundle dir but not the task (see
// libcontainerd/supervisor/bundle.go), and every NewTask of the container
// then fails with "mkdir <bundle>: file exists". The client never deletes in
// containerd's state dir: Start fails with a StaleBundleError naming the dir
// and leaves it alone; the supervisor that owns containerd removes it, and
// the next Start works.
func TestStaleTaskBundle(t *testing.T) {
	ctx := testCtx(t)
	rec := newRecorder()
	c := newClient(t, rec)
	id := testID(t)
	mustCreate(t, c, id, rootfsSpec(t, id, "true"))
	// What containerd 1.6 left in the restart storm: the rootfs dir and the
	// work link of the bundle, and no shim.
	bundle := filepath.Join(testEnv.Daemon.StateDir(), "io.containerd.runtime.v2.task", testEnv.Namespace, id)
	if err := os.MkdirAll(filepath.Join(bundle, "rootfs"), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(testEnv.Root, "gone"), filepath.Join(bundle, "work")); err != nil {
		t.Fatal(err)
	}

	_, err := c.Start(ctx, id)
	wantClass(t, "Start over a stale bundle", err, errdefs.ErrFailedPrecondition)
	var stale *libcontainerd.StaleBundleError
	if !errors.As(err, &stale) || stale.Dir != bundle || stale.ContainerID != id || stale.Namespace != testEnv.Namespace {
		t.Fatalf("error %v (%#v): want a StaleBundleError for %s", err, stale, bundle)
	}
	if !strings.Contains(err.Error(), bundle+" ") {
		t.Fatalf("error %q does not name the stale dir %s", err, bundle)
	}
	if _, err := os.Stat(filepath.Join(bundle, "rootfs")); err != nil {
		t.Fatalf("stale bundle touched by the client: %v", err)
	}

	removed, err := testEnv.Daemon.RemoveStaleTaskBundle(stale.Namespace, stale.ContainerID)
	if err != nil || len(removed) != 1 || removed[0] != bundle {
		t.Fatalf("RemoveStaleTaskBundle: removed %v, %v; want %s", removed, err, bundle)
	}
	pid, err := c.Start(ctx, id)
	if err != nil {
		t.Fatalf("Start once the stale bundle is gone: %v", err)
	}
	exit := rec.wait(t, id, "", libcontainerd.EventExit, 1, 30*time.Second)[0]
	if exit.ExitCode != 0 || exit.Pid != pid {
		t.Fatalf("exit %+v: want code 0 from pid %d", exit, pid)
	}
}

// TestBackendStaleTaskBundle: the same end to end through the engine, which
// owns the state dir of its containerd (Config.ContainerdStateDir): its
// start has the supervisor package remove the stale bundle and starts again.
// Without the state dir it fails naming the dir, and leaves it alone.
func TestBackendStaleTaskBundle(t *testing.T) {
	for _, owned := range []bool{false, true} {
		t.Run(fmt.Sprintf("state dir owned %v", owned), func(t *testing.T) {
			env := newEngineEnv(t, func(cfg *backend.Config) {
				if !owned {
					cfg.ContainerdStateDir = ""
				}
			})
			ctx := testCtx(t)
			c := env.create(backend.CreateOptions{Cmd: []string{"true"}})
			bundle := filepath.Join(testEnv.Daemon.StateDir(), "io.containerd.runtime.v2.task", testEnv.Namespace, c.ID)
			if err := os.MkdirAll(filepath.Join(bundle, "rootfs"), 0o711); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(bundle) })
			err := env.e.Start(ctx, c.ID)
			if !owned {
				wantClass(t, "Start over a stale bundle, state dir not owned", err, errdefs.ErrFailedPrecondition)
				if !strings.Contains(err.Error(), bundle+" ") {
					t.Fatalf("error %q does not name the stale dir %s", err, bundle)
				}
				if _, err := os.Stat(filepath.Join(bundle, "rootfs")); err != nil {
					t.Fatalf("stale bundle touched without owning the state dir: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Start over a stale bundle: %v", err)
			}
			if code, err := env.e.Wait(ctx, c.ID, backend.WaitNotRunning); err != nil || code != 0 {
				t.Fatalf("Wait: %d, %v; want exit 0", code, err)
			}
		})
	}
}
