package healthcheck

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

// maxKillRounds bounds the stop-and-rescan loop of KillTree; each round stops
// every process it finds, so only a tree that keeps growing from processes
// it cannot see would exhaust it.
const maxKillRounds = 64

// KillTree kills the host process pid and all its descendants, even while
// they fork: it walks the tree top-down, stopping (SIGSTOP) each process so
// it cannot fork any more, rescans until a walk finds nothing new, then
// SIGKILLs them all. When pid leads its process group or session, members of
// that group or session are included, which catches double-forked orphans
// that were reparented away from the tree. Processes that are already gone
// are not an error. The caller still reaps its own children.
func KillTree(pid int) error {
	if pid <= 1 {
		return fmt.Errorf("kill process tree: invalid pid %d: %w", pid, errdefs.ErrInvalidArgument)
	}
	stopped := make(map[int]bool)
	var order []int
	var errs *multierror.Error
	complete := false
	for round := 0; round < maxKillRounds; round++ {
		procs, err := readProcs()
		if err != nil {
			// Still kill what is stopped: never leave processes frozen.
			errs = multierror.Append(errs, fmt.Errorf("scan /proc: %w", err))
			complete = true
			break
		}
		found := false
		for _, p := range treeOf(pid, procs) {
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
		errs = multierror.Append(errs, fmt.Errorf("process tree of %d still grew after %d rounds", pid, maxKillRounds))
	}
	if err := errs.ErrorOrNil(); err != nil {
		return fmt.Errorf("kill process tree of %d: %w", pid, err)
	}
	return nil
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

// treeOf lists pid and its live descendants top-down (parents before
// children), plus the group or session members when pid leads them.
func treeOf(pid int, procs map[int]procInfo) []int {
	root, ok := procs[pid]
	if !ok {
		return nil
	}
	children := make(map[int][]int)
	for p, info := range procs {
		children[info.ppid] = append(children[info.ppid], p)
	}
	seen := map[int]bool{}
	var out []int
	var walk func(int)
	walk = func(p int) {
		if seen[p] || procs[p].zombie {
			return
		}
		seen[p] = true
		out = append(out, p)
		for _, c := range children[p] {
			walk(c)
		}
	}
	walk(pid)
	if root.pgid == pid || root.sid == pid {
		for p, info := range procs {
			if p != pid && !seen[p] && ((root.pgid == pid && info.pgid == pid) || (root.sid == pid && info.sid == pid)) {
				walk(p)
			}
		}
	}
	return out
}
