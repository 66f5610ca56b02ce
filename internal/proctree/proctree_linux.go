// Package proctree kills process trees and sessions by walking /proc: the
// host side of a health probe's timeout (healthcheck.KillTree) and the
// in-container side (the tend-init probe server). It has no state; every
// function may be called concurrently.
package proctree

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/containerd/errdefs"
	"github.com/hashicorp/go-multierror"
)

// maxKillRounds bounds the stop-and-rescan loop; each round stops every
// process it finds, so only a set that keeps growing from processes it
// cannot see would exhaust it.
const maxKillRounds = 64

// KillTree kills the process pid and all its descendants, even while they
// fork: it walks the tree top-down, stopping (SIGSTOP) each process so it
// cannot fork any more, rescans until a walk finds nothing new, then
// SIGKILLs them all. When pid leads its process group or session, members
// of that group or session are included, which catches double-forked
// orphans that were reparented away from the tree. Processes that are
// already gone are not an error. The caller still reaps its own children.
func KillTree(pid int) error {
	if pid <= 1 {
		return fmt.Errorf("kill process tree: invalid pid %d: %w", pid, errdefs.ErrInvalidArgument)
	}
	if _, err := killAll(func(procs map[int]procInfo) []int { return treeOf(pid, procs) }); err != nil {
		return fmt.Errorf("kill process tree of %d: %w", pid, err)
	}
	return nil
}

// KillSession kills every live process of session sid and their
// descendants, the same way as KillTree. It finds what is left of a probe
// after its leader exited: the leader's orphans keep its session id. It
// returns how many members the session had at its last scan, zombies
// included: 0 means every member exited and was reaped (the common case
// costs one scan of /proc).
func KillSession(sid int) (int, error) {
	if sid <= 1 {
		return 0, fmt.Errorf("kill session: invalid session id %d: %w", sid, errdefs.ErrInvalidArgument)
	}
	procs, err := killAll(func(procs map[int]procInfo) []int { return sessionOf(sid, procs) })
	if err != nil {
		return 0, fmt.Errorf("kill session %d: %w", sid, err)
	}
	return sessionSize(sid, procs), nil
}

// KillDescendants kills every live descendant of pid, the same way as
// KillTree, but not pid itself. For a subreaper (PR_SET_CHILD_SUBREAPER)
// that is everything it ever started, whatever they did with sessions,
// process groups or double forks: orphans below it are reparented to it,
// never out of its tree. It returns how many it found.
func KillDescendants(pid int) (int, error) {
	if pid <= 0 {
		return 0, fmt.Errorf("kill descendants: invalid pid %d: %w", pid, errdefs.ErrInvalidArgument)
	}
	n := 0
	_, err := killAll(func(procs map[int]procInfo) []int {
		d := descendantsOf(pid, procs)
		n = max(n, len(d))
		return d
	})
	if err != nil {
		return n, fmt.Errorf("kill descendants of %d: %w", pid, err)
	}
	return n, nil
}

// SessionSize counts the processes of session sid, zombies included: zero
// once every member exited and was reaped.
func SessionSize(sid int) (int, error) {
	procs, err := readProcs()
	if err != nil {
		return 0, fmt.Errorf("scan /proc: %w", err)
	}
	return sessionSize(sid, procs), nil
}

func sessionSize(sid int, procs map[int]procInfo) int {
	n := 0
	for _, info := range procs {
		if info.sid == sid {
			n++
		}
	}
	return n
}

// killAll stops what selectProcs finds until a scan finds nothing new, then
// kills everything it stopped. It returns the last scan, taken before the
// kills: members it killed are still in it.
func killAll(selectProcs func(map[int]procInfo) []int) (map[int]procInfo, error) {
	stopped := make(map[int]bool)
	var order []int
	var errs *multierror.Error
	complete := false
	var procs map[int]procInfo
	for round := 0; round < maxKillRounds; round++ {
		var err error
		procs, err = readProcs()
		if err != nil {
			// Still kill what is stopped: never leave processes frozen.
			errs = multierror.Append(errs, fmt.Errorf("scan /proc: %w", err))
			complete = true
			break
		}
		found := false
		for _, p := range selectProcs(procs) {
			if stopped[p] {
				continue
			}
			stopped[p] = true
			if err := syscall.Kill(p, syscall.SIGSTOP); err != nil {
				if !errors.Is(err, syscall.ESRCH) {
					errs = multierror.Append(errs, fmt.Errorf("stop %d: %w", p, err))
				}
				continue
			}
			order = append(order, p)
			found = true
		}
		if !found {
			complete = true
			break
		}
	}
	for _, p := range order {
		if err := syscall.Kill(p, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = multierror.Append(errs, fmt.Errorf("kill %d: %w", p, err))
		}
	}
	if !complete {
		errs = multierror.Append(errs, fmt.Errorf("the processes still grew after %d rounds", maxKillRounds))
	}
	return procs, errs.ErrorOrNil()
}

type procInfo struct {
	ppid, pgid, sid int
	zombie          bool
}

// readProcs scans /proc/*/stat. /proc/<pid>/task/*/children would be cheaper
// but needs CONFIG_PROC_CHILDREN and misses reparented orphans anyway.
func readProcs() (map[int]procInfo, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	procs := make(map[int]procInfo, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if info, ok := readStat(pid); ok {
			procs[pid] = info
		}
	}
	return procs, nil
}

// readStat parses /proc/<pid>/stat; false when the process is gone.
func readStat(pid int) (procInfo, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procInfo{}, false
	}
	// comm may contain spaces and parentheses: fields follow the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procInfo{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 4 {
		return procInfo{}, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgid, err2 := strconv.Atoi(f[2])
	sid, err3 := strconv.Atoi(f[3])
	if err1 != nil || err2 != nil || err3 != nil {
		return procInfo{}, false
	}
	return procInfo{ppid: ppid, pgid: pgid, sid: sid, zombie: f[0] == "Z" || f[0] == "X"}, true
}

// walker collects live processes top-down (parents before children).
type walker struct {
	procs    map[int]procInfo
	children map[int][]int
	seen     map[int]bool
	out      []int
}

func newWalker(procs map[int]procInfo) *walker {
	w := &walker{procs: procs, children: make(map[int][]int), seen: map[int]bool{}}
	for p, info := range procs {
		w.children[info.ppid] = append(w.children[info.ppid], p)
	}
	return w
}

func (w *walker) walk(p int) {
	if w.seen[p] || w.procs[p].zombie {
		return
	}
	w.seen[p] = true
	w.out = append(w.out, p)
	for _, c := range w.children[p] {
		w.walk(c)
	}
}

// treeOf lists pid and its live descendants, plus the group or session
// members (and theirs) when pid leads them.
func treeOf(pid int, procs map[int]procInfo) []int {
	root, ok := procs[pid]
	if !ok {
		return nil
	}
	w := newWalker(procs)
	w.walk(pid)
	if root.pgid == pid || root.sid == pid {
		for p, info := range procs {
			if (root.pgid == pid && info.pgid == pid) || (root.sid == pid && info.sid == pid) {
				w.walk(p)
			}
		}
	}
	return w.out
}

// descendantsOf lists the live descendants of pid, without pid.
func descendantsOf(pid int, procs map[int]procInfo) []int {
	w := newWalker(procs)
	w.seen[pid] = true
	for _, c := range w.children[pid] {
		w.walk(c)
	}
	return w.out
}

// sessionOf lists the live members of session sid and their descendants.
func sessionOf(sid int, procs map[int]procInfo) []int {
	w := newWalker(procs)
	if _, ok := procs[sid]; ok {
		w.walk(sid)
	}
	for p, info := range procs {
		if info.sid == sid {
			w.walk(p)
		}
	}
	return w.out
}

// Exited reports whether process pid has exited: it is gone, or a zombie
// its parent has not reaped yet. A pid reused since reads as alive.
func Exited(pid int) bool {
	info, ok := readStat(pid)
	return !ok || info.zombie
}
