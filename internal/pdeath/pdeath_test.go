package pdeath

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestChildOutlivesExitedThreads starts a child, then ends many locked
// threads (as containerd's netns code does): the child must still run,
// which it would not if it had been forked from one of them.
func TestChildOutlivesExitedThreads(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := Start(cmd, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread() // not unlocked: the thread ends with the goroutine
		}()
	}
	wg.Wait()
	// A parent-death signal is sent when the thread exits; give the kernel
	// a bounded moment to deliver one before concluding it did not.
	select {
	case err := <-exited:
		t.Fatalf("the child died when locked threads ended: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
}

// TestForkingThreadExitKillsChild shows the hazard Start avoids: a child
// forked from a thread that then ends gets its parent-death signal.
func TestForkingThreadExitKillsChild(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // not unlocked: the thread ends with the goroutine
		started <- cmd.Start()
	}()
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err == nil {
			t.Fatal("sleep 60 exited 0, want killed")
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-exited
		t.Fatal("the child of an ended thread still runs after 30s")
	}
}
