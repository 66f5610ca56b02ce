package healthcheck_test

import (
	"context"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend/healthcheck"
)

// hostExecer runs probes as host processes, ignoring the container id, so
// the real-clock path (timeout, KillTree, output drain) is exercised.
type hostExecer struct{ procs chan *hostProc }

func (e hostExecer) Start(ctx context.Context, _ string, argv []string, out io.Writer) (healthcheck.Process, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &hostProc{cmd: cmd, done: make(chan struct{})}
	go func() { // owned by hostProc: ends when the process exits and output is drained
		p.err = cmd.Wait()
		close(p.done)
	}()
	e.procs <- p
	return p, nil
}

type hostProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func (p *hostProc) Wait(ctx context.Context) (int, error) {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), nil
	case <-ctx.Done():
		return -1, ctx.Err()
	}
}

func (p *hostProc) Kill() error { return healthcheck.KillTree(p.cmd.Process.Pid) }

func TestHostProbes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		test       []string
		wantStatus string
		wantExit   int
		wantOutput string
	}{
		{"healthy", []string{"CMD-SHELL", "echo ok; echo err >&2"}, "healthy", 0, "ok\nerr\n"},
		{"exit 1", []string{"CMD", "/bin/sh", "-c", "echo down; exit 1"}, "unhealthy", 1, "down\n"},
		{"missing binary", []string{"CMD", "/nonexistent/check"}, "unhealthy", -1, "health check failed to start: fork/exec /nonexistent/check: no such file or directory"},
		// Background children keep the output pipe open: only killing the
		// whole tree lets Wait return.
		{"timeout kills the tree", []string{"CMD-SHELL", "echo started; sleep 1000 & sleep 1000 & wait"}, "unhealthy", -1, "health check timed out after 200ms: started\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			notes := make(chan healthcheck.State, 10)
			ex := hostExecer{procs: make(chan *hostProc, 10)}
			s := healthcheck.NewScheduler(ex, healthcheck.WithNotify(func(_ string, st healthcheck.State, _ bool) {
				notes <- st
			}))
			defer s.Close()
			// Only the hanging probe is meant to time out; the others get
			// room for a fork on a loaded machine.
			timeout := 10 * time.Second
			if strings.HasPrefix(tc.name, "timeout") {
				timeout = 200 * time.Millisecond
			}
			cfg := healthcheck.Config{Test: tc.test, Interval: time.Hour, StartInterval: time.Millisecond,
				Timeout: timeout, Retries: 1}
			if err := s.Add("host", cfg, nil); err != nil {
				t.Fatal(err)
			}
			st := recv(t, notes, "probe result")
			r := st.Log[0]
			if st.Status != tc.wantStatus || r.ExitCode != tc.wantExit || !strings.HasPrefix(r.Output, tc.wantOutput) {
				t.Fatalf("state %+v, want status %q exit %d output %q", st, tc.wantStatus, tc.wantExit, tc.wantOutput)
			}
			select {
			case p := <-ex.procs:
				select {
				case <-p.done: // exited and its output pipe was closed by every process
				default:
					t.Fatal("result reported before the probe's process tree was gone")
				}
			default:
				if tc.wantExit != -1 || !strings.Contains(r.Output, "failed to start") {
					t.Fatal("no process was started")
				}
			}
		})
	}
}
