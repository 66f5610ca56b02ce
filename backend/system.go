package backend

import (
	"context"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/tendhq/tend/libcontainerd"
)

// Info reports containerd's version and counts of containers and images.
func (e *Engine) Info(ctx context.Context) (Info, error) {
	if e.isClosed() {
		return Info{}, ErrClosed
	}
	v, err := e.client.Version(ctx)
	if err != nil {
		return Info{}, err
	}
	info := Info{ContainerdVersion: v.Version, Namespace: e.cfg.Namespace, Root: e.cfg.Root, LiveRestore: e.cfg.LiveRestore}
	for _, c := range e.containers() {
		c.mu.Lock()
		info.Containers++
		switch c.rec.State {
		case StateRunning, StateRestarting:
			info.Running++
		case StatePaused:
			info.Paused++
		default:
			info.Stopped++
		}
		c.mu.Unlock()
	}
	imgs, err := e.Images(ctx)
	if err != nil {
		return info, err
	}
	info.Images = len(imgs)
	return info, nil
}

// Stats reads the resource usage of a running container.
func (e *Engine) Stats(ctx context.Context, ref string) (*libcontainerd.Stats, error) {
	c, err := e.resolve(ref)
	if err != nil {
		return nil, err
	}
	exits, err := e.requireActive(c, ref)
	if err != nil {
		return nil, err
	}
	st, err := e.client.Stats(ctx, c.rec.ID)
	if err != nil {
		return nil, stoppedMeanwhile(c, ref, exits, err)
	}
	c.mu.Lock()
	pid := c.rec.Pid
	c.mu.Unlock()
	// The task may exit in between: its counters are then simply absent.
	if st.Networks, err = taskNetworks(pid); err != nil {
		e.log.WithError(err).WithField("container", c.rec.ID).Debug("stats: network counters")
	}
	return st, nil
}

// Top lists the processes of a running container.
func (e *Engine) Top(ctx context.Context, ref string) ([]TopProcess, error) {
	c, err := e.resolve(ref)
	if err != nil {
		return nil, err
	}
	exits, err := e.requireActive(c, ref)
	if err != nil {
		return nil, err
	}
	pids, err := e.client.ListPids(ctx, c.rec.ID)
	if err != nil {
		return nil, stoppedMeanwhile(c, ref, exits, err)
	}
	out := make([]TopProcess, 0, len(pids))
	for _, pid := range pids {
		p, ok := readProc(pid)
		if ok {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pid < out[j].Pid })
	return out, nil
}

// readProc reads a process's parent, uid and command line; false when it is
// gone.
func readProc(pid uint32) (TopProcess, bool) {
	dir := "/proc/" + strconv.FormatUint(uint64(pid), 10)
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return TopProcess{}, false
	}
	p := TopProcess{Pid: pid}
	name := ""
	for _, line := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		switch k {
		case "Name":
			name = f[0]
		case "PPid":
			if n, err := strconv.ParseUint(f[0], 10, 32); err == nil {
				p.PPid = uint32(n)
			}
		case "Uid":
			p.User = f[0]
		}
	}
	cmdline, _ := os.ReadFile(dir + "/cmdline")
	p.Command = strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
	if p.Command == "" {
		p.Command = "[" + name + "]"
	}
	return p, true
}
