package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/internal/testimage"
	"github.com/tendhq/tend/internal/testutil"
)

// The engine tests drive the real `engine` binary: a daemon on the
// harness's containerd (its own namespace, root and socket) and CLI
// invocations, exactly as a user would.

var (
	engineBinOnce sync.Once
	engineBin     string
	engineBinErr  error
)

// buildEngine builds cmd/engine and cmd/engined once per test binary run
// and returns the CLI's path.
func buildEngine(t testing.TB) string {
	t.Helper()
	engineBinOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = "/usr/local/go/bin/go"
		}
		dir, err := os.MkdirTemp(testEnv.Root, "engine-bin-")
		if err != nil {
			engineBinErr = err
			return
		}
		// The CLI and the daemon side by side, as installed: `engine
		// daemon` runs the engined next to it.
		engineBin = filepath.Join(dir, "engine")
		// The CLI static, as scripts/setup.sh builds it:
		// BenchmarkAPILifecycle times its start.
		for _, b := range []struct {
			out, pkg string
			env      []string
		}{
			{engineBin, "github.com/tendhq/tend/cmd/engine", []string{"CGO_ENABLED=0"}},
			{filepath.Join(dir, "engined"), "github.com/tendhq/tend/cmd/engined", nil},
		} {
			cmd := exec.Command(goBin, "build", "-o", b.out, b.pkg)
			cmd.Env = append(os.Environ(), b.env...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				engineBinErr = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
		// The daemon finds tend-init next to itself.
		if err := os.Link(testEnv.InitPath, filepath.Join(dir, "tend-init")); err != nil {
			engineBinErr = fmt.Errorf("tend-init for the engine: %w", err)
		}
	})
	if engineBinErr != nil {
		t.Fatal(engineBinErr)
	}
	return engineBin
}

// engineDaemon is one `engine daemon` process.
type engineDaemon struct {
	bin, root, sock, ns string
	cmd                 *exec.Cmd
	logs                *testutil.Buffer
	exited              chan struct{}
	waitErr             error
}

// startEngine starts `engine daemon` on the harness's containerd with root
// (state survives a restart on the same root) and waits until it serves.
func startEngine(t testing.TB, root, ns string, extra ...string) *engineDaemon {
	t.Helper()
	d := &engineDaemon{bin: buildEngine(t), root: root, sock: filepath.Join(root, "e.sock"), ns: ns, logs: &testutil.Buffer{}, exited: make(chan struct{})}
	args := append([]string{"daemon", "--containerd-address", testEnv.Address, "--containerd-state", testEnv.Daemon.StateDir(),
		"--namespace", ns, "--root", root, "--socket", d.sock, "--docker-socket", filepath.Join(root, "d.sock"), "--log-level", "debug"},
		append(networkArgs(t, root, extra), extra...)...)
	d.cmd = exec.Command(d.bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start engine daemon: %v", err)
	}
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.exited)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, _, code := d.run(t, nil, "version"); code == 0 {
			return d
		}
		select {
		case <-d.exited:
			t.Fatalf("engine daemon exited (%v) before serving:\n%s", d.waitErr, d.logs.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			d.kill(t)
			t.Fatalf("engine daemon did not serve on %s within 30s:\n%s", d.sock, d.logs.String())
		}
	}
}

// signal sends sig to the daemon and waits (up to a minute) for it to exit.
func (d *engineDaemon) signal(t testing.TB, sig syscall.Signal) error {
	t.Helper()
	select {
	case <-d.exited:
		return d.waitErr
	default:
	}
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal engine daemon: %v", err)
	}
	select {
	case <-d.exited:
		return d.waitErr
	case <-time.After(time.Minute):
		_ = d.cmd.Process.Kill()
		<-d.exited
		t.Fatalf("engine daemon did not exit within a minute of %v:\n%s", sig, d.logs.String())
		return nil
	}
}

func (d *engineDaemon) kill(t testing.TB) { _ = d.signal(t, syscall.SIGKILL) }

// run runs the CLI against the daemon and returns stdout, stderr and the
// exit code.
func (d *engineDaemon) run(t testing.TB, stdin io.Reader, args ...string) (string, string, int) {
	t.Helper()
	// A CLI call that hangs is a failure, not a reason to stall the suite.
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.bin, args...)
	cmd.Env = append(os.Environ(), "TEND_HOST="+d.sock)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("engine %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

// must runs the CLI and fails the test unless it exits 0.
func (d *engineDaemon) must(t testing.TB, args ...string) string {
	t.Helper()
	out, errs, code := d.run(t, nil, args...)
	if code != 0 {
		t.Fatalf("engine %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// expectFail runs the CLI and checks its exit code and that stderr holds msg.
func (d *engineDaemon) expectFail(t testing.TB, code int, msg string, args ...string) {
	t.Helper()
	out, errs, got := d.run(t, nil, args...)
	if got != code || !strings.Contains(errs, msg) {
		t.Errorf("engine %s: exit %d, stderr %q (stdout %q); want exit %d and stderr containing %q",
			strings.Join(args, " "), got, errs, out, code, msg)
	}
}

// engineRecord is the part of a container record the tests read.
type engineRecord struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	State        string `json:"state"`
	Pid          int    `json:"pid"`
	ExitCode     int    `json:"exit_code"`
	RestartCount int    `json:"restart_count"`
	Error        string `json:"error"`
	Health       *struct {
		Status string `json:"status"`
	} `json:"health"`
}

func (d *engineDaemon) inspect(t testing.TB, ref string) engineRecord {
	t.Helper()
	var recs []engineRecord
	out := d.must(t, "inspect", "--raw", ref)
	if err := json.Unmarshal([]byte(out), &recs); err != nil || len(recs) != 1 {
		t.Fatalf("inspect %s: %v in %q", ref, err, out)
	}
	return recs[0]
}

// poll calls cond every 100ms until it holds or timeout passes.
func enginePoll(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond) // poll interval, not synchronisation
	}
}

// engineImage returns the test image archive: TEND_TEST_IMAGE or one built
// into the test root.
func engineImage(t testing.TB) string {
	t.Helper()
	if p := repoPath(os.Getenv("TEND_TEST_IMAGE")); p != "" {
		return p
	}
	p := filepath.Join(testEnv.Root, "engine-busybox.tar")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if err := testimage.WriteOCIArchiveFile(p, busyboxPath(), testEnv.ImageRef); err != nil {
		t.Fatal(err)
	}
	return p
}

// cleanupEngine removes every container of the daemon (so no shim
// outlives the run) and stops it.
func cleanupEngine(t testing.TB, d *engineDaemon) {
	t.Helper()
	select {
	case <-d.exited:
		return
	default:
	}
	out, _, _ := d.run(t, nil, "ps", "-aq", "--no-trunc")
	for _, id := range strings.Fields(out) {
		if _, errs, code := d.run(t, nil, "rm", "-f", id); code != 0 {
			t.Errorf("cleanup: rm -f %s: %s", id, errs)
		}
	}
	if err := d.signal(t, syscall.SIGTERM); err != nil {
		t.Errorf("engine daemon exited with %v after SIGTERM:\n%s", err, d.logs.String())
	}
	// Whatever the engine failed to remove is removed behind its back, so
	// that no shim outlives the run; each one is a test failure.
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), d.ns), time.Minute)
	defer cancel()
	c, err := client.New(testEnv.Address, client.WithDefaultNamespace(d.ns))
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer c.Close()
	ctrs, err := c.Containers(ctx)
	if err != nil {
		t.Errorf("cleanup: list containers of %s: %v", d.ns, err)
	}
	for _, ctr := range ctrs {
		t.Errorf("cleanup: the engine left container %s in containerd; deleting it", ctr.ID())
		if err := deleteTask(ctx, ctr); err != nil && !errdefs.IsNotFound(err) {
			t.Errorf("cleanup: delete task of %s: %v", ctr.ID(), err)
		}
		if err := ctr.Delete(ctx, client.WithSnapshotCleanup); err != nil {
			t.Errorf("cleanup: delete %s: %v", ctr.ID(), err)
		}
	}
}
