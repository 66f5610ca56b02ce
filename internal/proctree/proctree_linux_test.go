package proctree

import (
	"bufio"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/internal/testutil"
)

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	info, ok := readStat(pid)
	return ok && !info.zombie
}

// groupMembers lists the live processes in process group pgid.
func groupMembers(t *testing.T, pgid int) []int {
	return liveWhere(t, func(info procInfo) bool { return info.pgid == pgid })
}

// sessionLive lists the live (not zombie) members of session sid.
func sessionLive(t *testing.T, sid int) []int {
	return liveWhere(t, func(info procInfo) bool { return info.sid == sid })
}

// liveWhere lists the live processes for which match holds.
func liveWhere(t *testing.T, match func(procInfo) bool) []int {
	t.Helper()
	procs, err := readProcs()
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for p, info := range procs {
		if match(info) && !info.zombie {
			out = append(out, p)
		}
	}
	return out
}

func TestKillTree(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script string
		// minProcs is how many live processes the group must have before
		// the kill, so the tree is really there.
		minProcs int
	}{
		{"two children", `sleep 1000 & sleep 1000 & echo ready; wait`, 3},
		{"double fork orphan", `sh -c 'sleep 1000 & echo ready' ; sleep 1000 & wait`, 3},
		{"nested", `sh -c 'sh -c "sleep 1000 & wait" & sleep 1000 & wait' & echo ready; wait`, 5},
		{"forking while killed", `echo ready; while :; do sleep 1000 & done`, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("/bin/sh", "-c", tc.script)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pid := cmd.Process.Pid
			reaped := false
			var before []int
			t.Cleanup(func() {
				// Whatever the outcome, leave none of our processes behind.
				if !reaped {
					syscall.Kill(-pid, syscall.SIGKILL) // the unreaped leader keeps the group id ours
					cmd.Wait()
				}
				for _, p := range before {
					if alive(p) {
						syscall.Kill(p, syscall.SIGKILL)
					}
				}
			})
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err != nil || strings.TrimSpace(line) != "ready" {
				t.Fatalf("read ready: %q, %v", line, err)
			}
			testutil.Poll(t, strconv.Itoa(tc.minProcs)+" processes in the tree", func() bool {
				return len(groupMembers(t, pid)) >= tc.minProcs
			})
			before = groupMembers(t, pid)

			if err := KillTree(pid); err != nil {
				t.Fatalf("KillTree(%d) = %v", pid, err)
			}
			cmd.Wait()
			reaped = true
			testutil.Poll(t, "all processes of the tree to be gone", func() bool {
				for _, p := range before {
					if alive(p) {
						return false
					}
				}
				return len(groupMembers(t, pid)) == 0
			})
		})
	}
}

func TestKillTreeGone(t *testing.T) {
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if err := KillTree(cmd.Process.Pid); err != nil {
		t.Errorf("KillTree(exited pid) = %v, want nil", err)
	}
	for _, pid := range []int{0, 1, -5} {
		if err := KillTree(pid); !errdefs.IsInvalidArgument(err) {
			t.Errorf("KillTree(%d) = %v, want ErrInvalidArgument", pid, err)
		}
	}
}

// TestKillSessionAfterLeaderExit kills what a session leader left behind:
// orphans that were reparented away from it but keep its session id, one of
// which moved to a process group of its own.
func TestKillSessionAfterLeaderExit(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", `sleep 1000 & sh -c 'sleep 1000 & wait' & echo ready`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The orphans hold stdout open: read the line, not to EOF.
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("read ready: %q, %v", line, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("leader: %v", err)
	}
	sid := cmd.Process.Pid
	var left []int
	t.Cleanup(func() {
		for _, p := range left {
			if alive(p) {
				syscall.Kill(p, syscall.SIGKILL)
			}
		}
	})
	testutil.Poll(t, "3 orphans in the session", func() bool { return len(sessionLive(t, sid)) >= 3 })
	left = sessionLive(t, sid)

	if _, err := KillSession(sid); err != nil {
		t.Fatalf("KillSession(%d) = %v", sid, err)
	}
	testutil.Poll(t, "the session to have no live process", func() bool { return len(sessionLive(t, sid)) == 0 })
	if n, err := KillSession(sid); err != nil || len(sessionLive(t, sid)) != 0 {
		t.Errorf("KillSession of a session with no live process = %d, %v, want nil and nothing alive", n, err)
	}
	for _, sid := range []int{0, 1, -5} {
		if _, err := KillSession(sid); !errdefs.IsInvalidArgument(err) {
			t.Errorf("KillSession(%d) = %v, want ErrInvalidArgument", sid, err)
		}
	}
}

// TestKillDescendants kills everything below a process, including children
// in sessions of their own, but not the process itself.
func TestKillDescendants(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", `setsid sleep 1000 & sh -c 'sleep 1000 & wait' & echo ready; wait`)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { KillTree(cmd.Process.Pid); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("read ready: %q, %v", line, err)
	}
	sh := cmd.Process.Pid
	below := func() []int {
		procs, err := readProcs()
		if err != nil {
			t.Fatal(err)
		}
		return descendantsOf(sh, procs)
	}
	testutil.Poll(t, "3 descendants", func() bool { return len(below()) >= 3 })

	if n, err := KillDescendants(sh); err != nil || n < 3 {
		t.Fatalf("KillDescendants(%d) = %d, %v; want at least 3, nil", sh, n, err)
	}
	// The shell's wait returns once its children died: it exits by itself.
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signaled() {
		t.Errorf("the shell itself ended by %v (%v): KillDescendants must spare it", cmd.ProcessState, err)
	}
	if left := below(); len(left) != 0 {
		t.Errorf("descendants left: %v", left)
	}
	for _, pid := range []int{0, -5} {
		if _, err := KillDescendants(pid); !errdefs.IsInvalidArgument(err) {
			t.Errorf("KillDescendants(%d) = %v, want ErrInvalidArgument", pid, err)
		}
	}
}
