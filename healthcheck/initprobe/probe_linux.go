package initprobe

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/tendhq/tend/internal/proctree"
)

// runProbe is tend-init in probe mode (SubreaperArgv): it becomes a
// subreaper, runs argv, reports its pid on reportFd when not 0 (the probe
// server's pipe), and once argv exited (or SIGTERM asks for a kill) kills
// and reaps every process below itself before it exits with argv's status.
// A probe's orphans are reparented to their nearest subreaper ancestor,
// whatever they do with sessions, process groups or double forks, so
// "below itself" is everything the probe started: no scan of the
// container's processes is needed, and none is made when the probe left
// nothing behind (the common case: one wait4 says so).
func runProbe(argv []string, reportFd int) int {
	var report *os.File
	if reportFd > 0 {
		report = os.NewFile(uintptr(reportFd), "report")
		syscall.CloseOnExec(reportFd)
	}
	// say reports once, and closes the report so that the server reads
	// to its end.
	say := func(msg string) {
		if report != nil {
			report.WriteString(msg)
			report.Close()
			report = nil
		}
	}
	fail := func(format string, args ...any) int {
		say("!" + fmt.Sprintf(format, args...))
		// Run as an exec, the probe's output is where this is seen.
		fmt.Fprintf(os.Stderr, "tend-init: "+format+"\n", args...)
		return 127
	}
	if len(argv) == 0 || argv[0] == "" {
		return fail("no command given")
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fail("become the probe's subreaper: %v", err)
	}
	// Before the pid is reported: the server's kill (SIGTERM) must find
	// the handler in place, or it would kill us and orphan the probe's
	// processes to PID 1.
	term := make(chan os.Signal, 1)
	signal.Notify(term, unix.SIGTERM)
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, unix.SIGCHLD)
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return fail("%v", err)
	}
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
		Env: os.Environ(), Files: []uintptr{0, 1, 2},
		// A session of its own, as before the subreaper: a probe that
		// reads its session or group finds its own.
		Sys: &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		return fail("exec %s: %v", argv[0], err)
	}
	say(strconv.Itoa(pid) + "\n")
	// Our copies of the output pipe must not keep it open once the probe's
	// processes are gone.
	if null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
		unix.Dup3(int(null.Fd()), 1, 0)
		unix.Dup3(int(null.Fd()), 2, 0)
		null.Close()
	}

	code := -1
	for code < 0 {
		select {
		case <-chld:
			code = reapUntil(pid)
		case <-term:
			code = 128 + int(unix.SIGKILL)
		}
	}
	killBelow()
	return code
}

// reapUntil reaps exited children without blocking and returns pid's
// status once it was reaped, -1 until then.
func reapUntil(pid int) int {
	for {
		var ws syscall.WaitStatus
		p, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || p <= 0 {
			return -1
		}
		if p == pid {
			return statusCode(ws)
		}
	}
}

// killBelow kills every process below this one and reaps them all: when it
// returns, nothing the probe started exists any more.
func killBelow() {
	self := os.Getpid()
	for {
		var ws syscall.WaitStatus
		p, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		switch {
		case errors.Is(err, syscall.EINTR), p > 0:
			continue
		case err != nil:
			return // ECHILD: no child, so nothing below us is left
		}
		// Live children: kill all below us (stopped first, so none forks
		// any more), then wait for one to go and look again.
		if _, err := proctree.KillDescendants(self); err != nil {
			fmt.Fprintf(os.Stderr, "tend-init: probe leftovers: %v\n", err)
		}
		if _, err := syscall.Wait4(-1, &ws, 0, nil); errors.Is(err, syscall.ECHILD) {
			return
		}
	}
}
