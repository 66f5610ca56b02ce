package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/tendhq/tend/internal/testutil"
	"github.com/tendhq/tend/io/attach"
	"github.com/tendhq/tend/libcontainerd"
)

// recorder is a Backend that keeps every event and lets tests wait for them.
type recorder struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every event
	events  []libcontainerd.EventInfo
	types   []libcontainerd.EventType
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) ProcessEvent(_ context.Context, id string, et libcontainerd.EventType, info libcontainerd.EventInfo) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, info)
	r.types = append(r.types, et)
	close(r.changed)
	r.changed = make(chan struct{})
	return nil
}

// matching returns the events of type et for container id and process
// (process "" means the init process).
func (r *recorder) matching(id, process string, et libcontainerd.EventType) []libcontainerd.EventInfo {
	if process == "" {
		process = id
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []libcontainerd.EventInfo
	for i, e := range r.events {
		if r.types[i] == et && e.ContainerID == id && e.ProcessID == process {
			out = append(out, e)
		}
	}
	return out
}

// wait blocks until n events of type et for id/process arrived, failing the
// test after timeout.
func (r *recorder) wait(t testing.TB, id, process string, et libcontainerd.EventType, n int, timeout time.Duration) []libcontainerd.EventInfo {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if got := r.matching(id, process, et); len(got) >= n {
			return got
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %d %s event(s) of %s/%s; have %d", timeout, n, et, id, process, len(r.matching(id, process, et)))
		}
	}
}

// newClient returns a libcontainerd client on the test daemon, closed at the
// end of the test.
func newClient(t testing.TB, b libcontainerd.Backend) libcontainerd.Client {
	t.Helper()
	c, err := libcontainerd.New(testCtx(t), testEnv.Address, testEnv.Namespace, b,
		libcontainerd.WithFIFODir(testEnv.FIFORoot))
	if err != nil {
		t.Fatalf("libcontainerd.New: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// rootfsSpec is a spec that runs args in the test rootfs directory.
func rootfsSpec(t testing.TB, id string, args ...string) *specs.Spec {
	t.Helper()
	s, err := oci.GenerateSpec(testCtx(t), nil, &containers.Container{ID: id},
		oci.WithDefaultPathEnv, oci.WithProcessArgs(args...), oci.WithRootFSPath(testEnv.Rootfs), oci.WithRootFSReadonly())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// imageSpec is a spec for WithImage; args empty means the image's command.
func imageSpec(t testing.TB, id string, args ...string) *specs.Spec {
	t.Helper()
	s, err := oci.GenerateSpec(testCtx(t), nil, &containers.Container{ID: id}, oci.WithDefaultPathEnv)
	if err != nil {
		t.Fatal(err)
	}
	s.Process.Args = args
	return s
}

// capture attaches stdout and stderr to buffers and stdin to r (may be nil).
func capture(stdin io.Reader, stdout, stderr io.Writer) libcontainerd.StdioOption {
	return libcontainerd.WithStdio(func(cfg cio.Config, p libcontainerd.Pipes) (cio.IO, error) {
		return attach.New(cfg, p.Stdin, p.Stdout, p.Stderr, attach.Streams{Stdin: stdin, Stdout: stdout, Stderr: stderr}), nil
	})
}

// mustCreate creates a container and deletes it (task included) at cleanup.
func mustCreate(t testing.TB, c libcontainerd.Client, id string, spec *specs.Spec, opts ...libcontainerd.CreateOption) {
	t.Helper()
	if err := c.Create(testCtx(t), id, spec, opts...); err != nil {
		t.Fatalf("Create %s: %v", id, err)
	}
	t.Cleanup(func() { cleanupContainer(t, id) })
}

func wantClass(t testing.TB, what string, err error, class error) {
	t.Helper()
	if !errors.Is(err, class) {
		t.Fatalf("%s: got error %v, want class %v", what, err, class)
	}
	if err != nil && len(err.Error()) < 20 {
		t.Fatalf("%s: error %q is too terse to tell the user what to do", what, err)
	}
}

func TestLifecycleFromRootfs(t *testing.T) {
	rec := newRecorder()
	c := newClient(t, rec)
	ctx := testCtx(t)
	id := testID(t)
	mustCreate(t, c, id, rootfsSpec(t, id, "sh", "-c", "echo hello; echo oops >&2; exit 3"))

	var out, errOut testutil.Buffer
	pid, err := c.Start(ctx, id, capture(nil, &out, &errOut))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if pid == 0 {
		t.Fatal("Start returned pid 0")
	}
	exit := rec.wait(t, id, "", libcontainerd.EventExit, 1, 20*time.Second)[0]
	if exit.ExitCode != 3 || exit.Pid != pid || exit.ExitedAt.IsZero() || exit.OOMKilled {
		t.Fatalf("exit event %+v: want code 3, pid %d, a time, no OOM", exit, pid)
	}
	if out.String() != "hello\n" || errOut.String() != "oops\n" {
		t.Fatalf("stdout %q, stderr %q: want complete output when the exit arrives", out.String(), errOut.String())
	}
	if starts := rec.matching(id, "", libcontainerd.EventStart); len(starts) != 1 || starts[0].Pid != pid {
		t.Fatalf("start events %+v: want one with pid %d", starts, pid)
	}
	if st, err := c.Status(ctx, id); err != nil || st != libcontainerd.StatusStopped {
		t.Fatalf("Status after exit: %v, %v; want stopped", st, err)
	}
	code, at, err := c.DeleteTask(ctx, id)
	if err != nil || code != 3 || at.IsZero() {
		t.Fatalf("DeleteTask: %d, %v, %v; want 3 and a time", code, at, err)
	}
	if st, err := c.Status(ctx, id); err != nil || st != libcontainerd.StatusNoTask {
		t.Fatalf("Status after DeleteTask: %v, %v; want no-task", st, err)
	}
	// The same container starts again after its task was deleted.
	if _, err := c.Start(ctx, id); err != nil {
		t.Fatalf("second Start: %v", err)
	}
	rec.wait(t, id, "", libcontainerd.EventExit, 2, 20*time.Second)
	if _, _, err := c.DeleteTask(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, id); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err = c.Status(ctx, id)
	wantClass(t, "Status of a deleted container", err, errdefs.ErrNotFound)
	if n := len(rec.matching(id, "", libcontainerd.EventExit)); n != 2 {
		t.Fatalf("%d exit events, want exactly 2", n)
	}
}

func TestLifecycleFromImage(t *testing.T) {
	rec := newRecorder()
	c := newClient(t, rec)
	ctx := testCtx(t)
	id := testID(t)
	spec := imageSpec(t, id, "sh", "-c", "echo $PATH; cat /etc/passwd | head -1")
	mustCreate(t, c, id, spec, libcontainerd.WithImage(testEnv.ImageRef), libcontainerd.WithLabels(map[string]string{"tend.test": "1"}))
	var out testutil.Buffer
	if _, err := c.Start(ctx, id, capture(nil, &out, &out)); err != nil {
		t.Fatalf("Start: %v", err)
	}
	exit := rec.wait(t, id, "", libcontainerd.EventExit, 1, 20*time.Second)[0]
	if exit.ExitCode != 0 || !strings.Contains(out.String(), "/bin") || !strings.Contains(out.String(), "root:") {
		t.Fatalf("exit %d, output %q: want 0 and the image's PATH and passwd", exit.ExitCode, out.String())
	}
	if _, _, err := c.DeleteTask(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	// The snapshot went with the container.
	if _, err := rawClient(t).SnapshotService("overlayfs").Stat(ctx, id); !errdefs.IsNotFound(err) {
		t.Fatalf("snapshot %s after Delete: %v, want NotFound", id, err)
	}
}

func TestRunningContainerOperations(t *testing.T) {
	rec := newRecorder()
	c := newClient(t, rec)
	ctx := testCtx(t)
	id := testID(t)
	mustCreate(t, c, id, imageSpec(t, id, "sleep", "1000"), libcontainerd.WithImage(testEnv.ImageRef))
	pid, err := c.Start(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := c.Version(ctx); err != nil || v.Version == "" {
		t.Fatalf("Version: %+v, %v", v, err)
	}

	// Exec, with output and exit code.
	var out testutil.Buffer
	epid, err := c.Exec(ctx, id, "e1", &specs.Process{Args: []string{"sh", "-c", "echo from-exec; exit 5"}, Cwd: "/", Env: []string{"PATH=/bin"}}, capture(nil, &out, &out))
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	eexit := rec.wait(t, id, "e1", libcontainerd.EventExit, 1, 20*time.Second)[0]
	if eexit.ExitCode != 5 || eexit.Pid != epid || out.String() != "from-exec\n" {
		t.Fatalf("exec exit %+v output %q: want code 5, pid %d, from-exec", eexit, out.String(), epid)
	}
	rec.wait(t, id, "e1", libcontainerd.EventExecAdded, 1, 5*time.Second)
	rec.wait(t, id, "e1", libcontainerd.EventExecStarted, 1, 5*time.Second)
	_, err = c.Exec(ctx, id, "../bad", &specs.Process{Args: []string{"true"}, Cwd: "/"})
	wantClass(t, "Exec with a bad exec id", err, errdefs.ErrInvalidArgument)

	// Pids and stats.
	pids, err := c.ListPids(ctx, id)
	if err != nil || len(pids) == 0 || pids[0] != pid {
		t.Fatalf("ListPids: %v, %v; want [%d]", pids, err, pid)
	}
	st, err := c.Stats(ctx, id)
	if err != nil || st.Pids.Current < 1 || st.Memory.Usage == 0 || st.Read.IsZero() {
		t.Fatalf("Stats: %+v, %v", st, err)
	}

	// Update resources and see them in the cgroup.
	limit := int64(64 << 20)
	if err := c.UpdateResources(ctx, id, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}); err != nil {
		t.Fatalf("UpdateResources: %v", err)
	}
	if st, err := c.Stats(ctx, id); err != nil || st.Memory.Limit != uint64(limit) {
		t.Fatalf("memory limit after update: %+v, %v; want %d", st.Memory, err, limit)
	}

	// Pause and resume.
	if err := c.Pause(ctx, id); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	rec.wait(t, id, "", libcontainerd.EventPaused, 1, 5*time.Second)
	if s, _ := c.Status(ctx, id); s != libcontainerd.StatusPaused {
		t.Fatalf("status after Pause: %s", s)
	}
	_, err = c.Exec(ctx, id, "e2", &specs.Process{Args: []string{"true"}, Cwd: "/"})
	wantClass(t, "Exec into a paused container", err, errdefs.ErrFailedPrecondition)
	wantClass(t, "Pause of a paused container", c.Pause(ctx, id), errdefs.ErrFailedPrecondition)
	if err := c.Resume(ctx, id); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	rec.wait(t, id, "", libcontainerd.EventResumed, 1, 5*time.Second)
	_, _, err = c.DeleteTask(ctx, id)
	wantClass(t, "DeleteTask of a running task", err, errdefs.ErrFailedPrecondition)
	wantClass(t, "Delete of a container with a task", c.Delete(ctx, id), errdefs.ErrFailedPrecondition)

	// Signal ends it.
	if err := c.SignalProcess(ctx, id, "", syscall.SIGKILL); err != nil {
		t.Fatalf("SignalProcess: %v", err)
	}
	exit := rec.wait(t, id, "", libcontainerd.EventExit, 1, 20*time.Second)[0]
	if exit.ExitCode != 137 {
		t.Fatalf("exit after SIGKILL: %+v, want 137", exit)
	}
	_, err = c.Exec(ctx, id, "e3", &specs.Process{Args: []string{"true"}, Cwd: "/"})
	wantClass(t, "Exec into a stopped container", err, errdefs.ErrFailedPrecondition)
	wantClass(t, "Pause of a stopped container", c.Pause(ctx, id), errdefs.ErrFailedPrecondition)
}

func TestStdinAndTerminal(t *testing.T) {
	rec := newRecorder()
	c := newClient(t, rec)
	ctx := testCtx(t)
	id := testID(t)
	mustCreate(t, c, id, rootfsSpec(t, id, "cat"))
	inR, inW := io.Pipe()
	var out testutil.Buffer
	if _, err := c.Start(ctx, id, libcontainerd.WithStdin(true), capture(inR, &out, &out)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(inW, "through stdin\n"); err != nil {
		t.Fatal(err)
	}
	// EOF on the engine's stdin reaches the process: cat ends.
	inW.Close()
	exit := rec.wait(t, id, "", libcontainerd.EventExit, 1, 20*time.Second)[0]
	if exit.ExitCode != 0 || out.String() != "through stdin\n" {
		t.Fatalf("cat: exit %d output %q", exit.ExitCode, out.String())
	}
	if _, _, err := c.DeleteTask(ctx, id); err != nil {
		t.Fatal(err)
	}

	// CloseStdin ends the stdin of an exec whose engine side stays open.
	id3 := id + "-exec"
	mustCreate(t, c, id3, rootfsSpec(t, id3, "sleep", "1000"))
	if _, err := c.Start(ctx, id3); err != nil {
		t.Fatal(err)
	}
	execIn, execInW := io.Pipe()
	defer execInW.Close()
	var execOut testutil.Buffer
	if _, err := c.Exec(ctx, id3, "cat", &specs.Process{Args: []string{"cat"}, Cwd: "/", Env: []string{"PATH=/bin"}}, libcontainerd.WithStdin(true), capture(execIn, &execOut, &execOut)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(execInW, "exec stdin\n"); err != nil {
		t.Fatal(err)
	}
	// CloseStdin closes at once: wait until cat has the line (it echoes it).
	for deadline := time.Now().Add(10 * time.Second); execOut.String() != "exec stdin\n"; {
		if time.Now().After(deadline) {
			t.Fatalf("cat did not echo its input: %q", execOut.String())
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
	if err := c.CloseStdin(ctx, id3, "cat"); err != nil {
		t.Fatalf("CloseStdin: %v", err)
	}
	exit = rec.wait(t, id3, "cat", libcontainerd.EventExit, 1, 20*time.Second)[0]
	if exit.ExitCode != 0 || execOut.String() != "exec stdin\n" {
		t.Fatalf("exec cat after CloseStdin: exit %d output %q", exit.ExitCode, execOut.String())
	}
	// A command that does not exist fails Exec at once, and the exec id
	// can be used again.
	if _, err := c.Exec(ctx, id3, "missing", &specs.Process{Args: []string{"/no/such/command"}, Cwd: "/"}, libcontainerd.WithStdin(true)); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("Exec of a missing command: %v, want an error saying no such file", err)
	}
	if _, err := c.Exec(ctx, id3, "missing", &specs.Process{Args: []string{"/bin/true"}, Cwd: "/"}); err != nil {
		t.Fatalf("Exec reusing the id of a failed exec: %v", err)
	}
	rec.wait(t, id3, "missing", libcontainerd.EventExit, 1, 20*time.Second)
	if err := c.SignalProcess(ctx, id3, "", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}

	// A terminal exec: resize it, then ask the shell for its size.
	id2 := id + "-tty"
	mustCreate(t, c, id2, rootfsSpec(t, id2, "sleep", "1000"))
	if _, err := c.Start(ctx, id2); err != nil {
		t.Fatal(err)
	}
	ttyR, ttyW := io.Pipe()
	var tty testutil.Buffer
	proc := &specs.Process{Args: []string{"sh"}, Cwd: "/", Terminal: true, Env: []string{"PATH=/bin", "TERM=xterm"}}
	if _, err := c.Exec(ctx, id2, "tty", proc, libcontainerd.WithStdin(true), capture(ttyR, &tty, nil)); err != nil {
		t.Fatalf("Exec with terminal: %v", err)
	}
	if err := c.ResizeTerminal(ctx, id2, "tty", 100, 40); err != nil {
		t.Fatalf("ResizeTerminal: %v", err)
	}
	if _, err := io.WriteString(ttyW, "stty size; exit 7\n"); err != nil {
		t.Fatal(err)
	}
	exit = rec.wait(t, id2, "tty", libcontainerd.EventExit, 1, 20*time.Second)[0]
	ttyW.Close()
	if exit.ExitCode != 7 || !strings.Contains(tty.String(), "40 100") {
		t.Fatalf("terminal exec: exit %d output %q; want 7 and \"40 100\"", exit.ExitCode, tty.String())
	}
	if err := c.SignalProcess(ctx, id2, id2, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, id2, "", libcontainerd.EventExit, 1, 20*time.Second)
}

func TestBadInput(t *testing.T) {
	c := newClient(t, newRecorder())
	ctx := testCtx(t)
	id := testID(t)
	for _, bad := range []string{"", "../etc", "a/b", ".hidden", "-x", strings.Repeat("a", 129), "sp ace"} {
		wantClass(t, fmt.Sprintf("Create(%q)", bad), c.Create(ctx, bad, rootfsSpec(t, "x", "true")), errdefs.ErrInvalidArgument)
	}
	wantClass(t, "Create with nil spec", c.Create(ctx, id, nil), errdefs.ErrInvalidArgument)
	noRoot := rootfsSpec(t, id, "true")
	noRoot.Root = nil
	wantClass(t, "Create without root filesystem", c.Create(ctx, id, noRoot), errdefs.ErrInvalidArgument)
	noArgs := rootfsSpec(t, id, "true")
	noArgs.Process.Args = nil
	wantClass(t, "Create without command", c.Create(ctx, id, noArgs), errdefs.ErrInvalidArgument)
	wantClass(t, "Create from a missing image", c.Create(ctx, id, imageSpec(t, id, "true"), libcontainerd.WithImage("docker.io/library/nope:latest")), errdefs.ErrNotFound)

	mustCreate(t, c, id, rootfsSpec(t, id, "true"))
	wantClass(t, "Create of a duplicate id", c.Create(ctx, id, rootfsSpec(t, id, "true")), errdefs.ErrAlreadyExists)

	unknown := id + "-unknown"
	_, err := c.Start(ctx, unknown)
	wantClass(t, "Start of an unknown container", err, errdefs.ErrNotFound)
	wantClass(t, "Pause of an unknown container", c.Pause(ctx, unknown), errdefs.ErrNotFound)
	wantClass(t, "Delete of an unknown container", c.Delete(ctx, unknown), errdefs.ErrNotFound)
	_, err = c.Exec(ctx, unknown, "e", &specs.Process{Args: []string{"true"}, Cwd: "/"})
	wantClass(t, "Exec into an unknown container", err, errdefs.ErrNotFound)
	_, err = c.Exec(ctx, id, "e", &specs.Process{Args: []string{"true"}, Cwd: "/"})
	wantClass(t, "Exec into a created container", err, errdefs.ErrFailedPrecondition)
	_, err = c.Stats(ctx, id)
	wantClass(t, "Stats of a container without task", err, errdefs.ErrFailedPrecondition)
	wantClass(t, "Signal of a container without task", c.SignalProcess(ctx, id, "", syscall.SIGTERM), errdefs.ErrFailedPrecondition)
	_, err = libcontainerd.New(ctx, testEnv.Address, testEnv.Namespace, nil)
	wantClass(t, "New without backend", err, errdefs.ErrInvalidArgument)

	// A command runc cannot run is the caller's error, and leaves no task.
	for i, args := range [][]string{{"no-such-command"}, {"/bin/no-such-command"}, {"/etc"}} {
		bad := fmt.Sprintf("%s-cmd%d", id, i)
		mustCreate(t, c, bad, rootfsSpec(t, bad, args...))
		for try := range 2 {
			_, err := c.Start(ctx, bad)
			wantClass(t, fmt.Sprintf("Start #%d of %q", try+1, args), err, errdefs.ErrInvalidArgument)
			if st, err := c.Status(ctx, bad); err != nil || st != libcontainerd.StatusNoTask {
				t.Errorf("after a failed Start of %q: status %v, %v; want no task", args, st, err)
			}
		}
		if err := c.Delete(ctx, bad); err != nil {
			t.Errorf("Delete %s: %v", bad, err)
		}
	}
}
