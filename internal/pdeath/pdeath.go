// Package pdeath starts child processes that the kernel kills when this
// process dies (PR_SET_PDEATHSIG), and only then.
//
// The kernel sends a child its parent-death signal when the thread that
// forked it exits, not when the process does. Go ends OS threads while the
// process runs: a goroutine that exits while locked to its thread takes the
// thread with it, and containerd's netns code (which the engine calls to give
// every container its network namespace) does so on purpose. A containerd
// forked from such a thread was SIGKILLed at a random later network set-up.
// Start forks every child from one thread that is locked for the life of the
// process and so never exits before it.
package pdeath

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

var (
	once  sync.Once
	forks chan func()
)

// Start starts cmd with sig as its parent-death signal, forked from the one
// thread that lives as long as this process. cmd's other SysProcAttr fields
// are kept.
func Start(cmd *exec.Cmd, sig syscall.Signal) error {
	once.Do(func() {
		forks = make(chan func())
		go forkLoop()
	})
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = sig
	done := make(chan error, 1)
	forks <- func() { done <- cmd.Start() }
	return <-done
}

// forkLoop runs the forks on its thread. It lives as long as the process by
// design (stopping it would end its thread and signal every child): leak
// checkers ignore it by this name (ForkLoop).
func forkLoop() {
	runtime.LockOSThread() // never unlocked
	for f := range forks {
		f()
	}
}

// ForkLoop is the name of the goroutine that outlives every test, for
// goleak.IgnoreTopFunction.
const ForkLoop = "github.com/tendhq/tend/internal/pdeath.forkLoop"
