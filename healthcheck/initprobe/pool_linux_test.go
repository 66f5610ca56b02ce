package initprobe

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/internal/proctree"
)

// runPooled runs argv through pool and returns its output, exit code and
// the connection it used.
func runPooled(t *testing.T, pool *Pool, sock string, pid int, argv ...string) (string, int, *conn) {
	t.Helper()
	var out bytes.Buffer
	p, err := pool.Start(ctx(t), sock, argv, &out, StartOptions{ServerPid: pid})
	if err != nil {
		t.Fatalf("Start %q: %v", argv, err)
	}
	code, err := p.Wait(ctx(t))
	if err != nil {
		t.Fatalf("Wait %q: %v", argv, err)
	}
	return out.String(), code, p.conn
}

func idleConn(pool *Pool, sock string) *conn {
	pool.mu.Lock()
	defer pool.mu.Unlock()
	return pool.idle[sock]
}

// TestPoolKeepsTheConnection: a probe that ended leaves its connection for
// the next, which gets its own output and status on it.
func TestPoolKeepsTheConnection(t *testing.T) {
	sock, initPid := startServer(t)
	pool := NewPool()
	t.Cleanup(func() { pool.Close() })
	out1, code1, c1 := runPooled(t, pool, sock, initPid, "sh", "-c", "echo one; exit 3")
	if idleConn(pool, sock) != c1 {
		t.Fatal("the connection of a probe that ended is not kept")
	}
	out2, code2, c2 := runPooled(t, pool, sock, initPid, "sh", "-c", "echo two")
	if c2 != c1 {
		t.Error("the second probe did not reuse the kept connection")
	}
	if out1 != "one\n" || code1 != 3 || out2 != "two\n" || code2 != 0 {
		t.Errorf("probes gave %q/%d and %q/%d, want \"one\\n\"/3 and \"two\\n\"/0", out1, code1, out2, code2)
	}
	// Many in a row on one connection: tend-init leaves nothing behind.
	for i := 0; i < 50; i++ {
		if _, code, c := runPooled(t, pool, sock, initPid, "true"); code != 0 || c != c1 {
			t.Fatalf("probe %d: exit %d, same connection %v", i, code, c == c1)
		}
	}
	if kids := childrenOf(t, initPid); len(kids) != 1 {
		t.Errorf("tend-init's children after the probes: %q, want only its command", kids)
	}
}

// TestPoolDoesNotKeep: a killed or abandoned probe, or one tend-init
// refused, leaves no connection behind, and the next probe dials afresh.
func TestPoolDoesNotKeep(t *testing.T) {
	sock, initPid := startServer(t)
	pool := NewPool()
	t.Cleanup(func() { pool.Close() })
	_, _, first := runPooled(t, pool, sock, initPid, "true")

	p, err := pool.Start(ctx(t), sock, []string{"sleep", "1000"}, nil, StartOptions{ServerPid: initPid})
	if err != nil {
		t.Fatal(err)
	}
	if p.conn != first {
		t.Error("the kept connection was not reused")
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if code, err := p.Wait(ctx(t)); err != nil || !p.Killed() {
		t.Fatalf("killed probe: %d, %v, killed %v", code, err, p.Killed())
	}
	if c := idleConn(pool, sock); c != nil {
		t.Error("a killed probe's connection was kept")
	}

	p, err = pool.Start(ctx(t), sock, []string{"sleep", "1000"}, nil, StartOptions{ServerPid: initPid})
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Wait(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait(cancelled) = %v", err)
	}
	sessionGone(t, p.Pid())
	if c := idleConn(pool, sock); c != nil {
		t.Error("an abandoned probe's connection was kept")
	}

	runPooled(t, pool, sock, initPid, "true")
	if _, err := pool.Start(ctx(t), sock, []string{"no-such-command-anywhere"}, nil, StartOptions{ServerPid: initPid}); err == nil || !strings.Contains(err.Error(), "no-such-command-anywhere") {
		t.Fatalf("Start(missing command) = %v, want an error naming it", err)
	}
	if c := idleConn(pool, sock); c != nil {
		t.Error("a refused probe's connection was kept")
	}
	if _, code, _ := runPooled(t, pool, sock, initPid, "true"); code != 0 {
		t.Errorf("probe after a refused one: exit %d", code)
	}
}

// TestPoolStaleConnection: a kept connection whose tend-init went away
// (the container stopped and started again: a new tend-init on the same
// path) is replaced by a new one, without failing the probe.
func TestPoolStaleConnection(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, SocketName)
	pool := NewPool()
	t.Cleanup(func() { pool.Close() })
	first, wait := startInit(t, "--probe-socket", sock, "sleep", "1000")
	waitListening(t, sock)
	// ServerPid 0: the stale connection is found by using it, not by the
	// pid check (which TestPoolServerChanged covers).
	if _, code, _ := runPooledPid(t, pool, sock, 0); code != 0 {
		t.Fatalf("probe: exit %d", code)
	}
	stale := idleConn(pool, sock)
	if stale == nil {
		t.Fatal("no kept connection")
	}
	proctree.KillTree(first.Process.Pid) // its command too, which holds the test's stderr
	wait()
	os.Remove(sock)
	startInit(t, "--probe-socket", sock, "sleep", "1000")
	waitListening(t, sock)
	_, code, c := runPooledPid(t, pool, sock, 0)
	if code != 0 || c == stale {
		t.Errorf("probe after tend-init changed: exit %d, stale connection reused %v", code, c == stale)
	}
}

// TestPoolServerChanged: a kept connection served by another pid than the
// container's task now has is closed, not used.
func TestPoolServerChanged(t *testing.T) {
	sock, initPid := startServer(t)
	pool := NewPool()
	t.Cleanup(func() { pool.Close() })
	_, _, c := runPooled(t, pool, sock, initPid, "true")
	if _, err := pool.Start(ctx(t), sock, []string{"true"}, nil, StartOptions{ServerPid: initPid + 100000}); !errdefs.IsUnavailable(err) {
		t.Errorf("Start(other server pid) = %v, want ErrUnavailable", err)
	}
	if _, err := c.c.Write([]byte("\n")); err == nil {
		t.Error("the connection of the former server is still open")
	}
}

// TestPoolDropAndClose: Drop and Close close the kept connections; a probe
// that ends after Close closes its own.
func TestPoolDropAndClose(t *testing.T) {
	sock, initPid := startServer(t)
	pool := NewPool()
	_, _, c := runPooled(t, pool, sock, initPid, "true")
	pool.Drop(sock)
	if idleConn(pool, sock) != nil {
		t.Fatal("Drop left the connection")
	}
	if _, err := c.c.Write([]byte("\n")); err == nil {
		t.Error("a dropped connection is still open")
	}
	p, err := pool.Start(ctx(t), sock, []string{"sh", "-c", "read x"}, nil, StartOptions{ServerPid: initPid})
	if err != nil {
		t.Fatal(err)
	}
	pool.Close()
	p.Kill()
	p.Wait(ctx(t))
	if _, err := p.conn.c.Write([]byte("\n")); err == nil {
		t.Error("a probe that ended after Close left its connection open")
	}
	if _, code, c := runPooled(t, pool, sock, initPid, "true"); code != 0 || idleConn(pool, sock) != nil {
		t.Errorf("probe after Close: exit %d, kept %v (a closed pool still runs probes, on connections of their own)", code, c == idleConn(pool, sock))
	}
}

func runPooledPid(t *testing.T, pool *Pool, sock string, pid int) (string, int, *conn) {
	return runPooled(t, pool, sock, pid, "true")
}

// TestProbeInitExits: when tend-init exits under a running probe (its
// command ended: the container stops), Wait says so with ErrInitExited,
// which the engine reads as no result rather than a failed probe.
func TestProbeInitExits(t *testing.T) {
	sock := filepath.Join(t.TempDir(), SocketName)
	cmd, wait := startInit(t, "--probe-socket", sock, "sleep", "1000")
	waitListening(t, sock)
	p, err := Start(ctx(t), sock, []string{"sleep", "1000"}, nil, StartOptions{ServerPid: cmd.Process.Pid})
	if err != nil {
		t.Fatal(err)
	}
	// In a container the probe dies with tend-init's PID namespace; here
	// its subreaper outlives tend-init until the probe is killed.
	t.Cleanup(func() {
		proctree.KillSession(p.Pid())
		sessionGone(t, p.Pid())
	})
	cmd.Process.Signal(syscall.SIGTERM) // forwarded to its command, which ends
	if code := wait(); code != 128+int(syscall.SIGTERM) {
		t.Errorf("tend-init exited %d, want %d", code, 128+int(syscall.SIGTERM))
	}
	if _, err := p.Wait(ctx(t)); !errors.Is(err, ErrInitExited) || !errdefs.IsUnavailable(err) {
		t.Errorf("Wait after tend-init exited = %v, want ErrInitExited (unavailable)", err)
	}
}
