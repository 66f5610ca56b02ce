package backend

import (
	"context"
	"os/exec"
	"slices"
	"syscall"
	"testing"

	"github.com/tendhq/tend/internal/testutil"
)

// signalsSent returns the signals the fake client was asked to send.
func (f *fakeClient) signalsSent() []syscall.Signal {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.signals)
}

// TestProbeProcessKillSubreaper: a probe under tend-init's probe mode is
// killed by a SIGTERM to its subreaper, which kills and reaps all of the
// probe (a host-side kill would leave zombies to PID 1); only a subreaper
// that does not exit in time has its tree killed from the host.
func TestProbeProcessKillSubreaper(t *testing.T) {
	running := func(t *testing.T) (*fakeEnv, *Container) {
		env := newFakeEnv(t)
		c := env.create(CreateOptions{})
		if err := env.e.Start(context.Background(), c.ID); err != nil {
			t.Fatalf("Start: %v", err)
		}
		return env, c
	}
	// hostProc stands in for the subreaper: the fake client signals no
	// host process, so only the host-side tree kill can end it.
	hostProc := func(t *testing.T) *exec.Cmd {
		cmd := exec.Command("sleep", "1000")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}

	t.Run("exits on SIGTERM", func(t *testing.T) {
		env, c := running(t)
		cmd := hostProc(t)
		x := &Exec{e: env.e, ctrID: c.ID, id: "exec-probe", pid: uint32(cmd.Process.Pid), probe: true, done: make(chan struct{})}
		killed := make(chan error, 1)
		go func() { killed <- probeProcess{x: x, subreaper: true}.Kill() }()
		testutil.Poll(t, "a SIGTERM to the subreaper", func() bool {
			return slices.Contains(env.fc.signalsSent(), syscall.SIGTERM)
		})
		x.finish(128+int(syscall.SIGKILL), nil) // the subreaper cleaned up and exited
		if err := <-killed; err != nil {
			t.Fatalf("Kill: %v", err)
		}
		if got := env.fc.signalsSent(); !slices.Equal(got, []syscall.Signal{syscall.SIGTERM}) {
			t.Errorf("signals sent %v, want only the SIGTERM", got)
		}
		if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
			t.Errorf("the subreaper that exited by itself was killed from the host too: %v", err)
		}
	})

	t.Run("does not exit", func(t *testing.T) {
		env, c := running(t)
		cmd := hostProc(t)
		x := &Exec{e: env.e, ctrID: c.ID, id: "exec-probe", pid: uint32(cmd.Process.Pid), probe: true, done: make(chan struct{})}
		if err := (probeProcess{x: x, subreaper: true}).Kill(); err != nil {
			t.Fatalf("Kill: %v", err)
		}
		if got := env.fc.signalsSent(); !slices.Equal(got, []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL}) {
			t.Errorf("signals sent %v, want SIGTERM, then SIGKILL after %v", got, subreaperKillTimeout)
		}
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Errorf("subreaper that ignored the SIGTERM: %v, want it killed from the host", err)
		}
	})
}
