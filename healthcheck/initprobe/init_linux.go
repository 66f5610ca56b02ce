package initprobe

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tendhq/tend/internal/proctree"
)

// Main runs tend-init with args (without the program name) and returns its
// exit status: the command's, 128+n when signal n ended the command, 127
// when the command could not be started or args are wrong.
//
//	tend-init [--probe-socket PATH] [--exit-record PATH] [--] COMMAND [ARG...]
//
// With --exit-record, tend-init writes the command's status and exit time
// there (an ExitRecord) before it exits.
func Main(args []string) int {
	// One P is plenty for an init and keeps its threads and wakeups few:
	// a host runs one tend-init per container.
	runtime.GOMAXPROCS(1)
	fs := flag.NewFlagSet("tend-init", flag.ContinueOnError)
	socket := fs.String("probe-socket", "", "serve health probes on this unix socket")
	record := fs.String("exit-record", "", "write the command's exit status and time to this file before exiting")
	probe := fs.Bool(probeFlag, false, "run COMMAND as a health probe under a subreaper of its own")
	reportFd := fs.Int(reportFlag, 0, "with --"+probeFlag+": report the probe's pid on this fd")
	fs.SetOutput(os.Stderr)
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: tend-init [--probe-socket PATH] [--exit-record PATH] [--] COMMAND [ARG...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 127
	}
	argv := fs.Args()
	if *probe {
		return runProbe(argv, *reportFd)
	}
	if len(argv) == 0 {
		fs.Usage()
		return 127
	}
	code, err := run(argv, *socket)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tend-init: %v\n", err)
		code = 127
	}
	if *record != "" {
		// Before the exit: once PID 1 is gone the container is, and
		// containerd may lose the status (it is down, say).
		if err := WriteExitRecord(*record, ExitRecord{Code: code, ExitedAt: time.Now()}); err != nil {
			fmt.Fprintf(os.Stderr, "tend-init: %v\n", err)
		}
	}
	return code
}

func statusCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// run starts argv, serves probes on socket if set, and returns the
// command's status once it exited.
func run(argv []string, socket string) (int, error) {
	if os.Getpid() != 1 {
		// Outside a PID namespace of its own (tests, or a container that
		// shares the host's), adopt the orphans of our children instead.
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return 0, fmt.Errorf("become a subreaper: %w", err)
		}
	}
	// SIGCHLD on its own channel: a full channel of other signals must not
	// drop the one that says a child exited.
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, unix.SIGCHLD)
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs)

	r := newReaper()
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return 0, fmt.Errorf("start %q: %w", argv[0], err)
	}
	attr := &syscall.SysProcAttr{Setpgid: true}
	if _, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
		// Keep the terminal's foreground group: the command's, so that ^C
		// reaches it once (not it and us).
		attr.Foreground, attr.Ctty = true, 0
	}
	child, status, err := r.spawn(path, argv, &syscall.ProcAttr{
		Env: os.Environ(), Files: []uintptr{0, 1, 2}, Sys: attr,
	})
	if err != nil {
		return 0, fmt.Errorf("start %q: %w", argv[0], err)
	}
	if socket != "" {
		s, err := listen(socket, r)
		if err != nil {
			// Probes then run the slow way (the engine falls back to an
			// exec): not a reason to fail the container.
			fmt.Fprintf(os.Stderr, "tend-init: %v\n", err)
		} else {
			defer s.close()
		}
	}
	for {
		select {
		case <-chld:
			r.reapAll()
		case ws := <-status:
			return statusCode(ws), nil
		case sig := <-sigs:
			switch sig {
			case unix.SIGCHLD:
				r.reapAll()
			case unix.SIGURG, unix.SIGPIPE:
				// The Go runtime's preemption and our own broken pipes.
			default:
				unix.Kill(child, sig.(syscall.Signal))
			}
		}
	}
}

// reaper collects every child's exit with wait4(-1): the statuses of the
// processes we started go to their waiters, the rest (orphans) are dropped.
type reaper struct {
	mu      sync.Mutex
	waiters map[int]chan syscall.WaitStatus
	reaped  chan struct{} // closed and replaced whenever reapAll reaped
}

func newReaper() *reaper {
	return &reaper{waiters: map[int]chan syscall.WaitStatus{}, reaped: make(chan struct{})}
}

// changed returns a channel closed by the next reapAll that reaps anything.
func (r *reaper) changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reaped
}

// spawn starts a process whose exit arrives on the returned channel. The
// lock keeps reapAll from dropping the exit of a process that was not yet
// registered.
func (r *reaper) spawn(path string, argv []string, attr *syscall.ProcAttr) (int, <-chan syscall.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := syscall.ForkExec(path, argv, attr)
	if err != nil {
		return 0, nil, err
	}
	ch := make(chan syscall.WaitStatus, 1)
	r.waiters[pid] = ch
	return pid, ch, nil
}

// signal sends sig to pid, a process started by spawn, unless it was
// reaped already: its pid may be another process's by then.
func (r *reaper) signal(pid int, sig syscall.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.waiters[pid]; ok {
		unix.Kill(pid, sig)
	}
}

func (r *reaper) reapAll() {
	reaped := false
	defer func() {
		if reaped {
			r.mu.Lock()
			close(r.reaped)
			r.reaped = make(chan struct{})
			r.mu.Unlock()
		}
	}()
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		reaped = true
		r.mu.Lock()
		if ch, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			ch <- ws
		}
		r.mu.Unlock()
	}
}

// server serves probes on a unix socket.
type server struct {
	l    *net.UnixListener
	r    *reaper
	path string
	wg   sync.WaitGroup
}

func listen(path string, r *reaper) (*server, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("probe socket %s: remove the old one: %w", path, err)
	}
	old := unix.Umask(0o077)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("probe socket: %w", err)
	}
	l.SetUnlinkOnClose(true)
	s := &server{l: l, r: r, path: path}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

func (s *server) close() {
	s.l.Close()
	s.wg.Wait()
}

func (s *server) accept() {
	defer s.wg.Done()
	var delay time.Duration
	for {
		c, err := s.l.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors or memory, for now: back off as
			// net/http does, and say so once.
			if delay == 0 {
				fmt.Fprintf(os.Stderr, "tend-init: probe socket: %v; retrying\n", err)
				delay = 5 * time.Millisecond
			} else {
				delay = min(2*delay, time.Second)
			}
			time.Sleep(delay)
			continue
		}
		delay = 0
		// Probes in flight when the command exits die with the
		// container; they are not waited for.
		go s.serve(c)
	}
}

// allowed admits only the engine: as PID 1 of a PID namespace, a peer whose
// pid is 0 (outside the namespace); otherwise root or our own user.
func allowed(c *net.UnixConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var cred *unix.Ucred
	if err := raw.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cred == nil {
		return false
	}
	if os.Getpid() == 1 {
		return cred.Pid == 0
	}
	return cred.Uid == 0 || int(cred.Uid) == os.Getuid()
}

// conn is one probe's connection; send is safe for concurrent use.
type conn struct {
	c  *net.UnixConn
	mu sync.Mutex
}

func (c *conn) send(r reply) {
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.c.Write(append(b, '\n'))
}

func (s *server) serve(uc *net.UnixConn) {
	defer uc.Close()
	if !allowed(uc) {
		return
	}
	c := &conn{c: uc}
	dec := json.NewDecoder(bufio.NewReader(uc))
	var req request
	uc.SetReadDeadline(time.Now().Add(requestTimeout))
	if err := dec.Decode(&req); err != nil {
		return
	}
	uc.SetReadDeadline(time.Time{})
	if len(req.Argv) == 0 || req.Argv[0] == "" {
		c.send(reply{Error: "no command given"})
		return
	}
	limit := req.Limit
	if limit <= 0 || limit > MaxOutput {
		limit = MaxOutput
	}
	// Checked here too, so that a missing command costs no subreaper.
	if _, err := exec.LookPath(req.Argv[0]); err != nil {
		c.send(reply{Error: err.Error()})
		return
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		c.send(reply{Error: err.Error()})
		return
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		devnull.Close()
		c.send(reply{Error: err.Error()})
		return
	}
	defer pr.Close()
	rr, rw, err := os.Pipe()
	if err != nil {
		devnull.Close()
		pw.Close()
		c.send(reply{Error: err.Error()})
		return
	}
	// The probe runs under a subreaper of its own (runProbe), which kills
	// and reaps everything the probe started before it exits, wherever it
	// went: orphans never reach us, or PID 1's other children.
	sub, status, err := s.r.spawn("/proc/self/exe", append([]string{"tend-init", "--" + probeFlag, "--" + reportFlag + "=3", "--"}, req.Argv...), &syscall.ProcAttr{
		Env: os.Environ(), Files: []uintptr{devnull.Fd(), pw.Fd(), pw.Fd(), rw.Fd()},
		Sys: &syscall.SysProcAttr{Setsid: true},
	})
	devnull.Close()
	pw.Close()
	rw.Close()
	if err != nil {
		rr.Close()
		c.send(reply{Error: fmt.Sprintf("exec %s: %v", req.Argv[0], err)})
		return
	}
	pid, err := readReport(rr)
	rr.Close()
	if err != nil {
		<-status
		c.send(reply{Error: err.Error()})
		return
	}
	c.send(reply{Pid: pid})

	var dropped int64
	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		dropped = copyCapped(c, pr, limit)
	}()
	// Anything more from the engine, or it going away, is a kill.
	killReq := make(chan struct{})
	go func() {
		var r request
		dec.Decode(&r)
		close(killReq)
	}()

	var ws syscall.WaitStatus
	killed := false
	select {
	case ws = <-status:
	case <-killReq:
		killed = true
		// The subreaper kills the probe and all below it, reaps them, and
		// exits.
		s.r.signal(sub, unix.SIGTERM)
		ws = <-status
	}
	if ws.Signaled() {
		// Something killed the subreaper itself (the probe can: same
		// user): its orphans came to PID 1. Sweep the probe's session,
		// where they are unless they left it.
		sweepSession(s.r, pid)
	}
	// Every writer of the pipe is dead and reaped by now, unless the
	// subreaper was killed: then do not wait long for the rest.
	pr.SetReadDeadline(time.Now().Add(outputGrace))
	<-outDone
	code := statusCode(ws)
	if killed {
		code = -1
	}
	c.send(reply{Exit: &code, Killed: killed, Dropped: dropped})
}

// readReport reads a probe subreaper's report: the probe's pid, or why it
// did not start.
func readReport(r io.Reader) (int, error) {
	b, err := io.ReadAll(io.LimitReader(r, 4096))
	if err != nil {
		return 0, fmt.Errorf("read the probe's start: %w", err)
	}
	msg := strings.TrimSpace(string(b))
	if strings.HasPrefix(msg, "!") {
		return 0, errors.New(msg[1:])
	}
	pid, err := strconv.Atoi(msg)
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("the probe's subreaper exited before it started the probe (said %q)", msg)
	}
	return pid, nil
}

// sweepSession kills what is left of session sid and waits (bounded) for
// the reaper to collect it.
func sweepSession(r *reaper, sid int) {
	deadline := time.NewTimer(leftoverTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond) // in case a SIGCHLD was merged away
	defer tick.Stop()
	for {
		changed := r.changed()
		if n, err := proctree.KillSession(sid); err != nil || n == 0 {
			return
		}
		select {
		case <-changed:
		case <-tick.C:
		case <-deadline.C:
			return
		}
	}
}

// copyCapped sends what r yields as output chunks, up to limit bytes, and
// returns how many bytes it dropped beyond that.
func copyCapped(c *conn, r io.Reader, limit int) int64 {
	buf := make([]byte, 32*1024)
	sent := 0
	var dropped int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			keep := min(n, limit-sent)
			if keep > 0 {
				c.send(reply{Out: append([]byte(nil), buf[:keep]...)})
				sent += keep
			}
			dropped += int64(n - keep)
		}
		if err != nil {
			return dropped
		}
	}
}
