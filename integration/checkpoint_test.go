package integration

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/tendhq/tend/internal/testutil"
	"github.com/tendhq/tend/libcontainerd"
	"github.com/tendhq/tend/libcontainerd/supervisor"
)

// counterScript prints 1, 2, 3... one number a line, every 50ms. The count
// lives only in the shell's memory: a restored process that goes on from
// where it was checkpointed proves CRIU restored it.
const counterScript = "i=0; while :; do i=$((i+1)); echo $i; sleep 0.05; done"

// counterTimeout bounds every wait for the counter.
const counterTimeout = 20 * time.Second

// needCRIU skips a test when the harness gave containerd no private criu:
// Debian's criu 3.17 cannot dump on this kernel.
func needCRIU(t testing.TB) {
	t.Helper()
	if criuPath() == "" {
		t.Skip("no CRIU for containerd: run scripts/criu.sh and set TEND_CRIU_PATH to the dir it prints (or write it to build/criu-path)")
	}
}

// lastCount returns the last complete number the counter printed, 0 before
// the first.
func lastCount(t testing.TB, out *testutil.Buffer) int {
	t.Helper()
	s := out.String()
	end := strings.LastIndexByte(s, '\n')
	if end < 0 {
		return 0
	}
	s = s[:end]
	n, err := strconv.Atoi(s[strings.LastIndexByte(s, '\n')+1:])
	if err != nil {
		t.Fatalf("counter output %q: %v", out.String(), err)
	}
	return n
}

// firstCount returns the first number the counter printed, 0 before it.
func firstCount(t testing.TB, out *testutil.Buffer) int {
	t.Helper()
	s := out.String()
	end := strings.IndexByte(s, '\n')
	if end < 0 {
		return 0
	}
	n, err := strconv.Atoi(s[:end])
	if err != nil {
		t.Fatalf("counter output %q: %v", s, err)
	}
	return n
}

// waitCount polls until the counter printed at least n, and returns the
// last number.
func waitCount(t testing.TB, out *testutil.Buffer, n int) int {
	t.Helper()
	deadline := time.Now().Add(counterTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if got := lastCount(t, out); got >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("counter did not reach %d within %v; output %q", n, counterTimeout, out.String())
		}
		<-tick.C
	}
}

// startCounter creates a container from the test image running the counter
// and starts it.
func startCounter(t testing.TB, c libcontainerd.Client, id string) *testutil.Buffer {
	t.Helper()
	mustCreate(t, c, id, imageSpec(t, id, "sh", "-c", counterScript), libcontainerd.WithImage(testEnv.ImageRef))
	out := &testutil.Buffer{}
	if _, err := c.Start(testCtx(t), id, capture(nil, out, out)); err != nil {
		t.Fatalf("Start %s: %v", id, err)
	}
	waitCount(t, out, 5)
	return out
}

// restoreCounter starts id from a checkpoint and checks that the counter
// goes on from after lo (at most from after hi): not from 1.
func restoreCounter(t testing.TB, c libcontainerd.Client, rec *recorder, id string, lo, hi int, from libcontainerd.StartOption) *testutil.Buffer {
	t.Helper()
	out := &testutil.Buffer{}
	pid, err := c.Start(testCtx(t), id, from, capture(nil, out, out))
	if err != nil {
		t.Fatalf("Start %s from checkpoint: %v", id, err)
	}
	if pid == 0 {
		t.Fatalf("Start %s from checkpoint returned pid 0", id)
	}
	rec.wait(t, id, "", libcontainerd.EventStart, 1, 5*time.Second)
	waitCount(t, out, lo+3)
	// A number printed right before the dump may sit in the old pipe and be
	// lost; anything else means the counter started again.
	if first := firstCount(t, out); first <= lo || first > hi+2 {
		t.Fatalf("restored counter started at %d; want it to go on from %d..%d (output %q)", first, lo, hi, out.String())
	}
	if st, err := c.Status(testCtx(t), id); err != nil || st != libcontainerd.StatusRunning {
		t.Fatalf("Status after restore: %v, %v; want running", st, err)
	}
	return out
}

// stopAndDelete kills the task of id, waits for its n-th exit and deletes the
// task.
func stopAndDelete(t testing.TB, c libcontainerd.Client, rec *recorder, id string, n int) {
	t.Helper()
	ctx := testCtx(t)
	if err := c.SignalProcess(ctx, id, "", syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", id, err)
	}
	rec.wait(t, id, "", libcontainerd.EventExit, n, 20*time.Second)
	if _, _, err := c.DeleteTask(ctx, id); err != nil {
		t.Fatalf("DeleteTask %s: %v", id, err)
	}
}

func TestCheckpointExitAndRestore(t *testing.T) {
	needCRIU(t)
	rec := newRecorder()
	c := newClient(t, rec)
	ctx := testCtx(t)
	id := testID(t)
	out := startCounter(t, c, id)
	dir := filepath.Join(t.TempDir(), "cp")

	if err := c.CreateCheckpoint(ctx, id, dir, libcontainerd.WithCheckpointExit()); err != nil {
		t.Fatalf("CreateCheckpoint with exit: %v", err)
	}
	// The exit is an ordinary one; the output is complete when it arrives.
	exit := rec.wait(t, id, "", libcontainerd.EventExit, 1, 20*time.Second)[0]
	t.Logf("exit after checkpoint: code %d", exit.ExitCode)
	if st, err := c.Status(ctx, id); err != nil || st != libcontainerd.StatusStopped {
		t.Fatalf("Status after checkpoint with exit: %v, %v; want stopped", st, err)
	}
	n := lastCount(t, out)
	if _, err := os.Stat(filepath.Join(dir, "inventory.img")); err != nil {
		t.Fatalf("checkpoint dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "dump.log")); err != nil {
		t.Fatalf("CRIU log in the checkpoint dir: %v", err)
	}
	if _, _, err := c.DeleteTask(ctx, id); err != nil {
		t.Fatalf("DeleteTask: %v", err)
	}
	restoreCounter(t, c, rec, id, n, n, libcontainerd.WithCheckpointDir(dir))
	wantClass(t, "CreateCheckpoint into a dir that holds one", c.CreateCheckpoint(ctx, id, dir), errdefs.ErrAlreadyExists)
	stopAndDelete(t, c, rec, id, 2)

	// A checkpoint restores more than once.
	restoreCounter(t, c, rec, id, n, n, libcontainerd.WithCheckpointDir(dir))
	stopAndDelete(t, c, rec, id, 3)
}

func TestCheckpointLeaveRunning(t *testing.T) {
	needCRIU(t)
	rec := newRecorder()
	c := newClient(t, rec)
	ctx := testCtx(t)
	id := testID(t)
	out := startCounter(t, c, id)
	dir := filepath.Join(t.TempDir(), "cp")

	before := lastCount(t, out)
	if err := c.CreateCheckpoint(ctx, id, dir); err != nil {
		t.Fatalf("CreateCheckpoint: %v", err)
	}
	after := lastCount(t, out)
	if st, err := c.Status(ctx, id); err != nil || st != libcontainerd.StatusRunning {
		t.Fatalf("Status after checkpoint: %v, %v; want running", st, err)
	}
	waitCount(t, out, after+5) // it kept counting
	if n := len(rec.matching(id, "", libcontainerd.EventExit)); n != 0 {
		t.Fatalf("%d exit events after a checkpoint that leaves the task running", n)
	}
	stopAndDelete(t, c, rec, id, 1)
	restoreCounter(t, c, rec, id, before, after, libcontainerd.WithCheckpointDir(dir))

	// The same checkpoint also goes on in a new container, next to the
	// first copy.
	id2 := id + "-new"
	mustCreate(t, c, id2, imageSpec(t, id2, "sh", "-c", counterScript), libcontainerd.WithImage(testEnv.ImageRef))
	restoreCounter(t, c, rec, id2, before, after, libcontainerd.WithCheckpointDir(dir))
	stopAndDelete(t, c, rec, id, 2)
	stopAndDelete(t, c, rec, id2, 1)
}

// TestCheckpointImageIntoNewContainer checkpoints into the content store and
// restores into a second container created from the same image.
func TestCheckpointImageIntoNewContainer(t *testing.T) {
	needCRIU(t)
	rec := newRecorder()
	c := newClient(t, rec)
	ctx := testCtx(t)
	id := testID(t)
	out := startCounter(t, c, id)

	ref, err := c.CheckpointImage(ctx, id, "", libcontainerd.WithCheckpointExit())
	if err != nil {
		t.Fatalf("CheckpointImage: %v", err)
	}
	t.Cleanup(func() { c.DeleteCheckpointImage(context.Background(), ref) })
	rec.wait(t, id, "", libcontainerd.EventExit, 1, 20*time.Second)
	n := lastCount(t, out)
	if _, err := c.CheckpointImage(ctx, id, "", libcontainerd.WithCheckpointExit()); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("CheckpointImage of an exited task: %v, want FailedPrecondition", err)
	}
	_, err = c.CheckpointImage(ctx, id, testEnv.ImageRef)
	wantClass(t, "CheckpointImage with a name in use", err, errdefs.ErrAlreadyExists)

	// The checkpoint survives a garbage collection: delete another name of
	// it synchronously, which collects before it returns.
	raw := rawClient(t)
	img, err := raw.ImageService().Get(ctx, ref)
	if err != nil {
		t.Fatalf("checkpoint image %q: %v", ref, err)
	}
	if img.Labels["containerd.io/checkpoint"] != "true" {
		t.Fatalf("checkpoint image labels %v: want containerd.io/checkpoint=true", img.Labels)
	}
	alias := img
	alias.Name = ref + "-gc"
	alias.Labels = nil
	if _, err := raw.ImageService().Create(ctx, alias); err != nil {
		t.Fatal(err)
	}
	if err := raw.ImageService().Delete(ctx, alias.Name, images.SynchronousDelete()); err != nil {
		t.Fatalf("delete alias with GC: %v", err)
	}

	// The first container is done; the checkpoint goes on in a new one.
	if _, _, err := c.DeleteTask(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	id2 := id + "-new"
	mustCreate(t, c, id2, imageSpec(t, id2, "sh", "-c", counterScript), libcontainerd.WithImage(testEnv.ImageRef))
	restoreCounter(t, c, rec, id2, n, n, libcontainerd.WithCheckpointImage(ref))
	stopAndDelete(t, c, rec, id2, 1)

	if err := c.DeleteCheckpointImage(ctx, ref); err != nil {
		t.Fatalf("DeleteCheckpointImage: %v", err)
	}
	wantClass(t, "DeleteCheckpointImage twice", c.DeleteCheckpointImage(ctx, ref), errdefs.ErrNotFound)
	_, err = c.Start(ctx, id2, libcontainerd.WithCheckpointImage(ref))
	wantClass(t, "Start from a deleted checkpoint image", err, errdefs.ErrNotFound)
}

// TestCheckpointPaused checkpoints a paused container: it stays paused when
// left running, and the checkpoint restores to a running counter.
func TestCheckpointPaused(t *testing.T) {
	needCRIU(t)
	rec := newRecorder()
	c := newClient(t, rec)
	ctx := testCtx(t)
	id := testID(t)
	out := startCounter(t, c, id)
	if err := c.Pause(ctx, id); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	rec.wait(t, id, "", libcontainerd.EventPaused, 1, 5*time.Second)
	// A line echoed just before the freeze may still be on its way
	// through the shim: one more is allowed. A running counter makes
	// dozens during a dump.
	n := lastCount(t, out)
	dir := filepath.Join(t.TempDir(), "cp")
	if err := c.CreateCheckpoint(ctx, id, dir); err != nil {
		t.Fatalf("CreateCheckpoint of a paused container: %v", err)
	}
	if st, err := c.Status(ctx, id); err != nil || st != libcontainerd.StatusPaused {
		t.Fatalf("Status after checkpoint of a paused container: %v, %v; want paused", st, err)
	}
	if got := lastCount(t, out); got > n+1 {
		t.Fatalf("a paused counter went on from %d to %d", n, got)
	}
	if err := c.Resume(ctx, id); err != nil {
		t.Fatalf("Resume after checkpoint: %v", err)
	}
	waitCount(t, out, n+3)

	// With exit, a paused task ends too.
	if err := c.Pause(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateCheckpoint(ctx, id, filepath.Join(t.TempDir(), "cp2"), libcontainerd.WithCheckpointExit()); err != nil {
		t.Fatalf("CreateCheckpoint with exit of a paused container: %v", err)
	}
	rec.wait(t, id, "", libcontainerd.EventExit, 1, 20*time.Second)
	if _, _, err := c.DeleteTask(ctx, id); err != nil {
		t.Fatal(err)
	}

	restoreCounter(t, c, rec, id, n, n, libcontainerd.WithCheckpointDir(dir))
	stopAndDelete(t, c, rec, id, 2)
}

func TestCheckpointErrors(t *testing.T) {
	rec := newRecorder()
	c := newClient(t, rec)
	ctx := testCtx(t)
	id := testID(t)
	mustCreate(t, c, id, imageSpec(t, id, "sh", "-c", "exit 0"), libcontainerd.WithImage(testEnv.ImageRef))
	dir := t.TempDir()

	wantClass(t, "CreateCheckpoint without a task", c.CreateCheckpoint(ctx, id, filepath.Join(dir, "a")), errdefs.ErrFailedPrecondition)
	_, err := c.CheckpointImage(ctx, id, "")
	wantClass(t, "CheckpointImage without a task", err, errdefs.ErrFailedPrecondition)
	wantClass(t, "CreateCheckpoint without a dir", c.CreateCheckpoint(ctx, id, ""), errdefs.ErrInvalidArgument)
	wantClass(t, "CreateCheckpoint of an unknown container", c.CreateCheckpoint(ctx, id+"-unknown", filepath.Join(dir, "b")), errdefs.ErrNotFound)

	for _, tc := range []struct {
		name string
		opt  libcontainerd.StartOption
	}{
		{"missing dir", libcontainerd.WithCheckpointDir(filepath.Join(dir, "missing"))},
		{"dir without a checkpoint", libcontainerd.WithCheckpointDir(dir)},
		{"missing image", libcontainerd.WithCheckpointImage("checkpoint/none:0")},
	} {
		_, err := c.Start(ctx, id, tc.opt)
		wantClass(t, "Start from a "+tc.name, err, errdefs.ErrNotFound)
		if st, err := c.Status(ctx, id); err != nil || st != libcontainerd.StatusNoTask {
			t.Fatalf("Status after Start from a %s: %v, %v; want no-task", tc.name, st, err)
		}
	}
	_, err = c.Start(ctx, id, libcontainerd.WithCheckpointImage(testEnv.ImageRef))
	wantClass(t, "Start from an image that is not a checkpoint", err, errdefs.ErrInvalidArgument)
	wantClass(t, "DeleteCheckpointImage of an image that is not a checkpoint", c.DeleteCheckpointImage(ctx, testEnv.ImageRef), errdefs.ErrInvalidArgument)
	wantClass(t, "DeleteCheckpointImage of a missing image", c.DeleteCheckpointImage(ctx, "checkpoint/none:0"), errdefs.ErrNotFound)

	// A checkpoint CRIU cannot read: the error names restore.log, kept in
	// the work dir.
	if criuPath() != "" {
		bad, work := filepath.Join(dir, "bad"), filepath.Join(dir, "work")
		if err := os.MkdirAll(bad, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bad, "inventory.img"), []byte("not a CRIU image"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bad, "descriptors.json"), []byte(`["/dev/null","/dev/null","/dev/null"]`), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := c.Start(ctx, id, libcontainerd.WithCheckpointDir(bad), libcontainerd.WithCheckpointWorkDir(work))
		wantClass(t, "Start from a broken checkpoint", err, errdefs.ErrFailedPrecondition)
		log := filepath.Join(work, "restore.log")
		if !strings.Contains(err.Error(), log) {
			t.Fatalf("error %q: want it to name %s", err, log)
		}
		if _, serr := os.Stat(log); serr != nil {
			t.Fatalf("CRIU's restore log: %v (error %v)", serr, err)
		}
		t.Logf("restore error: %v", err)
		if st, err := c.Status(ctx, id); err != nil || st != libcontainerd.StatusNoTask {
			t.Fatalf("Status after a failed restore: %v, %v; want no-task", st, err)
		}
	}

	// A dump CRIU refuses (it cannot dump a ramfs mount): the error names
	// dump.log, kept in the checkpoint dir; the task runs on.
	if criuPath() != "" {
		rid := id + "-ramfs"
		spec := imageSpec(t, rid, "sleep", "1000")
		spec.Mounts = append(spec.Mounts, specs.Mount{Type: "ramfs", Source: "ramfs", Destination: "/mnt"})
		mustCreate(t, c, rid, spec, libcontainerd.WithImage(testEnv.ImageRef))
		if _, err := c.Start(ctx, rid); err != nil {
			t.Fatal(err)
		}
		cp := filepath.Join(dir, "ramfs")
		err := c.CreateCheckpoint(ctx, rid, cp, libcontainerd.WithCheckpointExit())
		wantClass(t, "CreateCheckpoint of a container with a ramfs mount", err, errdefs.ErrFailedPrecondition)
		log := filepath.Join(cp, "dump.log")
		if !strings.Contains(err.Error(), "CRIU log: "+log) {
			t.Fatalf("error %q: want it to name %s", err, log)
		}
		t.Logf("dump error: %v", err)
		if b, err := os.ReadFile(log); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if strings.Contains(l, "Error") {
					t.Logf("dump.log: %s", l)
				}
			}
		}
		if st, err := c.Status(ctx, rid); err != nil || st != libcontainerd.StatusRunning {
			t.Fatalf("Status after a failed checkpoint: %v, %v; want running", st, err)
		}
		stopAndDelete(t, c, rec, rid, 1)
	}

	// A stopped task cannot be checkpointed; the container still starts.
	if _, err := c.Start(ctx, id); err != nil {
		t.Fatalf("Start after failed restores: %v", err)
	}
	rec.wait(t, id, "", libcontainerd.EventExit, 1, 20*time.Second)
	wantClass(t, "CreateCheckpoint of a stopped task", c.CreateCheckpoint(ctx, id, filepath.Join(dir, "c")), errdefs.ErrFailedPrecondition)
}

// TestCheckpointWithoutCRIU runs a second private containerd whose PATH
// finds a criu that always fails: checkpoint and restore fail with
// FailedPrecondition and name CRIU's log.
func TestCheckpointWithoutCRIU(t *testing.T) {
	fake := t.TempDir()
	if err := os.WriteFile(filepath.Join(fake, "criu"), []byte("#!/bin/sh\necho 'fake criu: refusing' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := os.MkdirTemp("/tmp", "tend-nocriu-")
	if err != nil {
		t.Fatal(err)
	}
	ns := "tend-nocriu-" + strconv.Itoa(os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := supervisor.Start(ctx, supervisor.Config{Root: filepath.Join(root, "c"), ExtraPath: []string{fake}})
	if err != nil {
		t.Fatalf("start a containerd without CRIU: %v", err)
	}
	// Cleanups run last-in first-out: the container goes before the daemon.
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer scancel()
		if err := d.Stop(sctx); err != nil {
			t.Errorf("stop the containerd without CRIU: %v", err)
		}
		unmountUnder(root)
		os.RemoveAll(filepath.Join(runcStateRoot, ns))
		if err := os.RemoveAll(root); err != nil {
			t.Errorf("remove %s: %v", root, err)
		}
	})
	rec := newRecorder()
	c, err := libcontainerd.New(ctx, d.Address(), ns, rec, libcontainerd.WithFIFODir(filepath.Join(root, "fifo")))
	if err != nil {
		t.Fatal(err)
	}
	id := testID(t)
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), ns), 20*time.Second)
		defer ccancel()
		c.SignalProcess(cctx, id, "", syscall.SIGKILL)
		if st, _ := c.Status(cctx, id); st != libcontainerd.StatusNoTask {
			rec.wait(t, id, "", libcontainerd.EventExit, 1, 20*time.Second)
			if _, _, err := c.DeleteTask(cctx, id); err != nil {
				t.Errorf("DeleteTask: %v", err)
			}
		}
		if err := c.Delete(cctx, id); err != nil {
			t.Errorf("Delete: %v", err)
		}
		c.Close()
	})
	if err := c.Create(ctx, id, rootfsSpec(t, id, "sleep", "1000")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx, id); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "cp")
	err = c.CreateCheckpoint(ctx, id, dir, libcontainerd.WithCheckpointExit())
	wantClass(t, "CreateCheckpoint with a failing criu", err, errdefs.ErrFailedPrecondition)
	if !strings.Contains(err.Error(), "CRIU") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("error %q: want it to say CRIU failed and where its log is", err)
	}
	t.Logf("checkpoint error: %v", err)
	_, err = c.CheckpointImage(ctx, id, "", libcontainerd.WithCheckpointExit())
	wantClass(t, "CheckpointImage with a failing criu", err, errdefs.ErrFailedPrecondition)
	t.Logf("checkpoint image error: %v", err)
	if st, err := c.Status(ctx, id); err != nil || st != libcontainerd.StatusRunning {
		t.Fatalf("Status after failed checkpoints: %v, %v; want still running", st, err)
	}

	// Restore fails the same way; the fake criu fails before it reads the
	// images, so an empty inventory will do.
	id2 := id + "-restore"
	if err := c.Create(ctx, id2, rootfsSpec(t, id2, "sleep", "1000")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Delete(namespaces.WithNamespace(context.Background(), ns), id2); err != nil {
			t.Errorf("Delete %s: %v", id2, err)
		}
	})
	cp := t.TempDir()
	for _, f := range []string{"inventory.img", "descriptors.json"} {
		if err := os.WriteFile(filepath.Join(cp, f), []byte("[]"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.Start(ctx, id2, libcontainerd.WithCheckpointDir(cp))
	wantClass(t, "restore with a failing criu", err, errdefs.ErrFailedPrecondition)
	if !strings.Contains(err.Error(), "CRIU") {
		t.Fatalf("error %q: want it to say CRIU failed", err)
	}
	t.Logf("restore error: %v", err)
	if st, err := c.Status(ctx, id2); err != nil || st != libcontainerd.StatusNoTask {
		t.Fatalf("Status after a failed restore: %v, %v; want no-task", st, err)
	}
}
