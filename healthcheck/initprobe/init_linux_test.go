package initprobe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/internal/proctree"
	"github.com/tendhq/tend/internal/testutil"
)

// initBin is the tend-init under test: TEND_INIT_PATH, or one built from
// cmd/tend-init/tend-init.c by TestMain.
var initBin string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		if p := os.Getenv("TEND_INIT_PATH"); p != "" {
			initBin = p
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "tend-init-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		initBin = filepath.Join(dir, "tend-init")
		if out, err := exec.Command("gcc", "-static", "-Os", "-o", initBin, "../../cmd/tend-init/tend-init.c").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build tend-init (gcc and libc6-dev: scripts/setup.sh installs them): %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}())
}

// startInit starts tend-init with args; the returned func waits for its
// exit status. Cleanup kills it if the test did not wait.
func startInit(t testing.TB, args ...string) (*exec.Cmd, func() int) {
	t.Helper()
	cmd := exec.Command(initBin, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	code := -1
	wait := func() int {
		once.Do(func() {
			err := cmd.Wait()
			var ee *exec.ExitError
			switch {
			case err == nil:
				code = 0
			case errors.As(err, &ee):
				code = ee.ExitCode()
			default:
				t.Errorf("wait for tend-init: %v", err)
			}
		})
		return code
	}
	t.Cleanup(func() {
		// The command and probes are in groups and sessions of their own;
		// in a container they would die with PID 1.
		proctree.KillTree(cmd.Process.Pid)
		wait()
	})
	return cmd, wait
}

func TestInitExitStatus(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"exit code", []string{"--", "sh", "-c", "exit 3"}, 3},
		{"success", []string{"true"}, 0},
		{"signal", []string{"sh", "-c", "kill -KILL $$"}, 128 + 9},
		{"missing command", []string{"no-such-command-anywhere"}, 127},
		{"no command", nil, 127},
		{"bad flag", []string{"--no-such-flag", "true"}, 127},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, wait := startInit(t, tc.args...)
			if got := wait(); got != tc.want {
				t.Errorf("tend-init %q exited %d, want %d", tc.args, got, tc.want)
			}
		})
	}
}

// TestInitExitRecord: with --exit-record tend-init leaves the command's
// status and exit time in the file before it exits, whatever ended the
// command; the engine reads it when containerd lost the status.
func TestInitExitRecord(t *testing.T) {
	for _, tc := range []struct {
		name string
		argv []string
		want int
	}{
		{"exit code", []string{"sh", "-c", "sleep 0.2; exit 42"}, 42},
		{"signal", []string{"sh", "-c", "kill -KILL $$"}, 128 + 9},
		{"missing command", []string{"no-such-command-anywhere"}, 127},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), ExitRecordName)
			before := time.Now()
			_, wait := startInit(t, append([]string{"--exit-record", path, "--"}, tc.argv...)...)
			code := wait()
			after := time.Now()
			rec, err := ReadExitRecord(path)
			if err != nil || rec == nil {
				t.Fatalf("ReadExitRecord = %+v, %v; want a record", rec, err)
			}
			if code != tc.want || rec.Code != tc.want || rec.ExitedAt.Before(before) || rec.ExitedAt.After(after) {
				t.Errorf("tend-init exited %d, record %+v; want %d, exited between %v and %v", code, rec, tc.want, before, after)
			}
		})
	}
	if rec, err := ReadExitRecord(filepath.Join(t.TempDir(), ExitRecordName)); rec != nil || err != nil {
		t.Errorf("ReadExitRecord of no file = %+v, %v; want nothing", rec, err)
	}
	bad := filepath.Join(t.TempDir(), ExitRecordName)
	if err := os.WriteFile(bad, []byte(`{"code":`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadExitRecord(bad); err == nil {
		t.Errorf("ReadExitRecord of a torn file: no error")
	}
}

func TestInitForwardsSignals(t *testing.T) {
	cmd, wait := startInit(t, "sleep", "1000")
	testutil.Poll(t, "the command to run", func() bool { return len(childrenOf(t, cmd.Process.Pid)) == 1 })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := wait(); got != 128+int(syscall.SIGTERM) {
		t.Errorf("after SIGTERM tend-init exited %d, want %d (the command's death by SIGTERM)", got, 128+int(syscall.SIGTERM))
	}
}

// TestInitReapsOrphans: grandchildren whose parent exited are adopted by
// tend-init and reaped, not left zombies.
func TestInitReapsOrphans(t *testing.T) {
	cmd, _ := startInit(t, "sh", "-c", "sh -c 'true & true & exit 0'; exec sleep 1000")
	init := cmd.Process.Pid
	var kids []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		kids = childrenOf(t, init)
		if len(kids) == 1 && kids[0] == "S sleep" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tend-init's children %q, want only the sleeping command: orphans not reaped?", kids)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// procInfo is what the tests read of a process in /proc/<pid>/stat.
type procInfo struct {
	ppid  int
	comm  string
	state string
}

// readProcs reads every process of the host's /proc.
func readProcs(t testing.TB) map[int]procInfo {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	procs := map[int]procInfo{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i, j := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if i < 0 || j < i {
			continue
		}
		f := strings.Fields(string(b[j+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		procs[p] = procInfo{ppid, string(b[i+1 : j]), f[0]}
	}
	return procs
}

// childrenOf lists "state comm" of pid's children.
func childrenOf(t testing.TB, pid int) []string {
	t.Helper()
	var out []string
	for _, info := range readProcs(t) {
		if info.ppid == pid {
			out = append(out, info.state+" "+info.comm)
		}
	}
	return out
}

// startServer starts tend-init serving probes, with sleep as its command,
// and returns the socket path and tend-init's pid.
func startServer(t testing.TB) (string, int) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), SocketName)
	cmd, _ := startInit(t, "--probe-socket", sock, "sleep", "1000")
	waitListening(t, sock)
	return sock, cmd.Process.Pid
}

// waitListening waits until tend-init listens on sock: the file appears at
// bind, before listen, so it waits for a connection.
func waitListening(t testing.TB, sock string) {
	t.Helper()
	testutil.Poll(t, "the probe socket", func() bool {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// sessionGone waits until no process of session sid is left, zombies
// included: the probe and everything it started were killed and reaped.
func sessionGone(t testing.TB, sid int) {
	t.Helper()
	testutil.Poll(t, "the probe's session to be empty", func() bool {
		n, err := proctree.SessionSize(sid)
		return err == nil && n == 0
	})
}

func TestProbe(t *testing.T) {
	sock, initPid := startServer(t)
	for _, tc := range []struct {
		name    string
		argv    []string
		limit   int
		code    int
		out     string
		dropped int64
	}{
		{"success", []string{"sh", "-c", "echo ok; echo err >&2"}, 0, 0, "ok\nerr\n", 0},
		{"failure", []string{"sh", "-c", "echo bad; exit 3"}, 0, 3, "bad\n", 0},
		{"output cut", []string{"sh", "-c", "printf '%010000d' 0"}, 100, 0, strings.Repeat("0", 100), 9900},
		// The background sleep holds the output pipe: it must be killed
		// for the probe to end.
		{"leftovers", []string{"sh", "-c", "sleep 1000 & echo done"}, 0, 0, "done\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out testutil.Buffer
			p, err := Start(ctx(t), sock, tc.argv, &out, StartOptions{Limit: tc.limit, ServerPid: initPid})
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			code, err := p.Wait(ctx(t))
			if err != nil {
				t.Fatalf("Wait: %v", err)
			}
			if code != tc.code || out.String() != tc.out || p.Dropped() != tc.dropped || p.Killed() {
				t.Errorf("probe %q: exit %d, output %q, dropped %d, killed %v; want %d, %q, %d, false",
					tc.argv, code, out.String(), p.Dropped(), p.Killed(), tc.code, tc.out, tc.dropped)
			}
			// Reported only after the session was reaped.
			if n, err := proctree.SessionSize(p.Pid()); err != nil || n != 0 {
				t.Errorf("after the exit the probe's session has %d processes (%v), want 0", n, err)
			}
		})
	}
}

type waited struct {
	code int
	err  error
}

// waitAsync runs p's Wait, which reads the probe's output as it comes,
// while the test looks at that output.
func waitAsync(p *Probe) <-chan waited {
	ch := make(chan waited, 1)
	go func() {
		code, err := p.Wait(context.Background())
		ch <- waited{code, err}
	}()
	return ch
}

// TestProbeSubreaperHoldsNothingOfTheServer: the probe's subreaper, forked
// from tend-init, holds its stdio and the report pipe it closes once the
// probe runs, and nothing else: none of the server's descriptors (its
// socket, its signalfd, the engine's connections: a copy held there would
// keep a connection open after tend-init closed it), nor any tend-init
// inherited (the exec'd subreaper passed those on to every probe).
func TestProbeSubreaperHoldsNothingOfTheServer(t *testing.T) {
	sock, initPid := startServer(t)
	// A second connection, idle, for the subreaper to have inherited.
	idle, err := Start(ctx(t), sock, []string{"true"}, nil, StartOptions{ServerPid: initPid})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	var out testutil.Buffer
	p, err := Start(ctx(t), sock, []string{"sh", "-c", "ls /proc/$PPID/fd"}, &out, StartOptions{ServerPid: initPid})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if code, err := p.Wait(ctx(t)); code != 0 || err != nil {
		t.Fatalf("probe: exit %d, %v: %s", code, err, out.String())
	}
	if _, err := idle.Wait(ctx(t)); err != nil {
		t.Fatalf("idle probe: %v", err)
	}
	fds := strings.Fields(out.String())
	if len(fds) == 0 {
		t.Fatalf("no descriptors listed for the subreaper: %q", out.String())
	}
	for _, fd := range fds {
		if n, err := strconv.Atoi(fd); err != nil || n > 3 {
			t.Errorf("the probe's subreaper holds descriptors %q; want only 0-2 and the report pipe (3)", fds)
			break
		}
	}
}

// TestProbeKill: a hanging probe with a background grandchild is killed
// whole and reaped before Wait returns.
func TestProbeKill(t *testing.T) {
	sock, initPid := startServer(t)
	var out testutil.Buffer
	p, err := Start(ctx(t), sock, []string{"sh", "-c", "sleep 1000 & sh -c 'sleep 1000 & wait' & echo started; sleep 1000"}, &out, StartOptions{ServerPid: initPid})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	waited := waitAsync(p)
	testutil.Poll(t, "the probe to start its children", func() bool { return out.String() == "started\n" })
	if err := p.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	w := <-waited
	code, err := w.code, w.err
	if err != nil || code != -1 || !p.Killed() {
		t.Errorf("killed probe: exit %d, killed %v, err %v; want -1, true, nil", code, p.Killed(), err)
	}
	if n, err := proctree.SessionSize(p.Pid()); err != nil || n != 0 {
		t.Errorf("after the kill the probe's session has %d processes (%v), want 0", n, err)
	}
	if kids := childrenOf(t, initPid); len(kids) != 1 {
		t.Errorf("tend-init's children after the kill: %q, want only its command", kids)
	}
	if err := p.Kill(); err != nil {
		t.Errorf("Kill after the exit = %v, want nil", err)
	}
}

// TestProbeEngineGone: when the engine stops waiting (or dies), the probe is
// killed; tend-init keeps serving.
func TestProbeEngineGone(t *testing.T) {
	sock, initPid := startServer(t)
	p, err := Start(ctx(t), sock, []string{"sleep", "1000"}, nil, StartOptions{ServerPid: initPid})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	waitCtx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Wait(waitCtx); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait(cancelled) = %v, want context.Canceled", err)
	}
	sessionGone(t, p.Pid())

	p2, err := Start(ctx(t), sock, []string{"true"}, nil, StartOptions{ServerPid: initPid})
	if err != nil {
		t.Fatalf("Start after an abandoned probe: %v", err)
	}
	if code, err := p2.Wait(ctx(t)); code != 0 || err != nil {
		t.Errorf("probe after an abandoned one: %d, %v", code, err)
	}
}

func TestProbeStartErrors(t *testing.T) {
	sock, initPid := startServer(t)
	if _, err := Start(ctx(t), sock, []string{"no-such-command-anywhere"}, nil, StartOptions{}); err == nil || !strings.Contains(err.Error(), "no-such-command-anywhere") {
		t.Errorf("Start(missing command) = %v, want an error naming it", err)
	}
	if _, err := Start(ctx(t), sock, nil, nil, StartOptions{}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("Start(no argv) = %v, want ErrInvalidArgument", err)
	}
	if _, err := Start(ctx(t), sock, []string{"true"}, nil, StartOptions{ServerPid: initPid + 100000}); !errdefs.IsUnavailable(err) {
		t.Errorf("Start(wrong server pid) = %v, want ErrUnavailable", err)
	}
	missing := filepath.Join(t.TempDir(), SocketName)
	if _, err := Start(ctx(t), missing, []string{"true"}, nil, StartOptions{}); !errdefs.IsUnavailable(err) {
		t.Errorf("Start(no socket) = %v, want ErrUnavailable", err)
	}
	// A path longer than a sockaddr_un still works.
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 120))
	if err := os.Mkdir(long, 0o700); err != nil {
		t.Fatal(err)
	}
	lsock := filepath.Join(long, SocketName)
	if err := os.Link(sock, lsock); err != nil {
		t.Fatal(err)
	}
	p, err := Start(ctx(t), lsock, []string{"true"}, nil, StartOptions{ServerPid: initPid})
	if err != nil {
		t.Fatalf("Start(long path): %v", err)
	}
	p.Wait(ctx(t))
}

// escapes are probes whose leftovers leave the probe's session and process
// group: only a subreaper of the probe's own still has them below it.
var escapes = []struct {
	name string
	cmd  string
}{
	{"setsid background", `setsid sh -c 'sleep 1000 &'`},
	{"setsid double fork", `setsid sh -c 'sh -c "setsid sleep 1000 &" &'; sleep 0.01`},
	{"setsid nohup", `setsid nohup sleep 1000 >/dev/null 2>&1 &`},
	{"stdout closed", `setsid sh -c 'exec >/dev/null 2>&1; sleep 1000 &'`},
	{"stdout held", `setsid sh -c 'sleep 1000 & echo held'`},
	{"new group", `sh -c 'set -m; sleep 1000 &'`},
}

// liveBelow lists the live processes below pid, by "pid comm".
func liveBelow(t testing.TB, pid int) []string {
	t.Helper()
	procs := readProcs(t)
	var out []string
	for p, info := range procs {
		for a, hops := info.ppid, 0; a > 1 && hops < 64; a, hops = procs[a].ppid, hops+1 {
			if a == pid {
				if info.state != "Z" {
					out = append(out, strconv.Itoa(p)+" "+info.comm)
				}
				break
			}
		}
	}
	return out
}

// TestProbeEscapesLeaveNothing: whatever a probe does with sessions,
// process groups, double forks and its output pipe, nothing of it is left
// once its exit is reported, and the exit is reported at once.
func TestProbeEscapesLeaveNothing(t *testing.T) {
	sock, initPid := startServer(t)
	testutil.Poll(t, "the command to run", func() bool { return len(childrenOf(t, initPid)) == 1 })
	base := liveBelow(t, initPid)
	for _, tc := range escapes {
		t.Run(tc.name, func(t *testing.T) {
			const probes = 3
			for i := 0; i < probes; i++ {
				var out testutil.Buffer
				p, err := Start(ctx(t), sock, []string{"sh", "-c", tc.cmd}, &out, StartOptions{ServerPid: initPid})
				if err != nil {
					t.Fatalf("Start: %v", err)
				}
				start := time.Now()
				code, err := p.Wait(ctx(t))
				took := time.Since(start)
				if err != nil || code != 0 {
					t.Fatalf("probe %q: exit %d, %v; want 0, nil (output %q)", tc.cmd, code, err, out.String())
				}
				// Not held up by an escaped process holding the output
				// pipe (the pipe's grace is a second).
				if took >= outputGrace {
					t.Errorf("probe %q reported its exit after %v: held up by its leftovers", tc.cmd, took)
				}
			}
			if left := liveBelow(t, initPid); len(left) != len(base) {
				t.Errorf("after %d probes %q, processes below tend-init: %q; want only its command's %q", probes, tc.cmd, left, base)
			}
		})
	}
}

// TestProbeKillEscaped: a killed probe whose escaped children hold its
// output pipe is reported killed at once, and nothing of it is left.
func TestProbeKillEscaped(t *testing.T) {
	sock, initPid := startServer(t)
	testutil.Poll(t, "the command to run", func() bool { return len(childrenOf(t, initPid)) == 1 })
	base := liveBelow(t, initPid)
	var out testutil.Buffer
	p, err := Start(ctx(t), sock, []string{"sh", "-c", `setsid sh -c 'sleep 1000 &'; setsid sh -c 'sh -c "sleep 1000 &" &'; echo started; sleep 1000`}, &out, StartOptions{ServerPid: initPid})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	waited := waitAsync(p)
	testutil.Poll(t, "the probe to start its children", func() bool { return out.String() == "started\n" })
	start := time.Now()
	if err := p.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	w := <-waited
	code, err := w.code, w.err
	took := time.Since(start)
	if err != nil || code != -1 || !p.Killed() {
		t.Errorf("killed probe: exit %d, killed %v, err %v; want -1, true, nil", code, p.Killed(), err)
	}
	if took >= outputGrace {
		t.Errorf("killed probe reported after %v: held up by the escaped processes holding its output", took)
	}
	if left := liveBelow(t, initPid); len(left) != len(base) {
		t.Errorf("after the kill, processes below tend-init: %q; want only its command's %q", left, base)
	}
}

// TestProbeKillsItsSubreaper: a probe that kills its own subreaper leaves
// its orphans to tend-init, which still sweeps the probe's session.
func TestProbeKillsItsSubreaper(t *testing.T) {
	sock, initPid := startServer(t)
	testutil.Poll(t, "the command to run", func() bool { return len(childrenOf(t, initPid)) == 1 })
	base := liveBelow(t, initPid)
	// It kills it once it reported the pid (closed its report fd): before
	// that, the server cannot know which session to sweep.
	p, err := Start(ctx(t), sock, []string{"sh", "-c", "sleep 1000 & while [ -e /proc/$PPID/fd/3 ]; do :; done; kill -KILL $PPID; sleep 1000"}, nil, StartOptions{ServerPid: initPid})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	code, err := p.Wait(ctx(t))
	if err != nil || code != 128+int(syscall.SIGKILL) {
		t.Errorf("probe that killed its subreaper: exit %d, %v; want %d, nil", code, err, 128+int(syscall.SIGKILL))
	}
	if left := liveBelow(t, initPid); len(left) != len(base) {
		t.Errorf("processes below tend-init: %q; want only its command's %q", left, base)
	}
}

// TestSubreaperArgvAsExec: tend-init's probe mode run directly (as an exec
// probe in a container runs it) leaves nothing of the probe and does not
// wait for escaped processes that hold its output.
func TestSubreaperArgvAsExec(t *testing.T) {
	argv := SubreaperArgv([]string{"sh", "-c", "echo out; " + escapes[0].cmd + "; " + escapes[4].cmd + "; exit 3"})
	if argv[0] != InitPath {
		t.Fatalf("SubreaperArgv starts with %q, want %q", argv[0], InitPath)
	}
	cmd := exec.Command(initBin, argv[1:]...)
	var out testutil.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Wait returns once the output pipe is closed: every holder is gone.
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || out.String() != "out\nheld\n" {
		t.Errorf("probe mode: %v, output %q; want exit status 3 and %q", err, out.String(), "out\nheld\n")
	}
	if left := liveBelow(t, os.Getpid()); len(left) != 0 {
		t.Errorf("processes left by the probe: %q", left)
	}

	cmd = exec.Command(initBin, SubreaperArgv([]string{"no-such-command-anywhere"})[1:]...)
	b, err := cmd.CombinedOutput()
	if !errors.As(err, &ee) || ee.ExitCode() != 127 || !strings.Contains(string(b), "no-such-command-anywhere") {
		t.Errorf("probe mode with a missing command: %v, output %q; want exit status 127 and a message naming it", err, b)
	}
}
