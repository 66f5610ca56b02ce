package libcontainerd

import (
	"context"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
)

// deliverKnown delivers an event of a container the client manages.
func (c *client) deliverKnown(ctrID string, et EventType, info EventInfo) {
	c.mu.Lock()
	known := c.containers[ctrID] != nil
	c.mu.Unlock()
	if known {
		c.deliver(ctrID, et, info)
	}
}

// deliverExit delivers the exit of a live process exactly once: the first
// report (event, waiter, reconcile or DeleteTask) wins, later ones for the
// same process and pid are dropped.
func (c *client) deliverExit(ctrID, processID string, pid, code uint32, exitedAt time.Time, reason string) {
	c.mu.Lock()
	ct := c.containers[ctrID]
	var p *process
	if ct != nil {
		p = ct.procs[processID]
	}
	if p == nil || !p.live || (p.pid != 0 && pid != 0 && p.pid != pid) {
		c.mu.Unlock()
		return
	}
	p.live = false
	p.exit = exitReport{code: code, at: exitedAt}
	oom := processID == ctrID && ct.oomSeen
	proc := p.proc
	c.mu.Unlock()

	info := EventInfo{ContainerID: ctrID, ProcessID: processID, Pid: pid, ExitCode: code, ExitedAt: exitedAt, OOMKilled: oom, Reason: reason}
	c.queue.Append(ctrID, func() {
		if proc != nil {
			drainIO(proc.IO())
		}
		if t, ok := proc.(containerd.Task); ok && !oom && code == 128+uint32(syscall.SIGKILL) {
			info.OOMKilled = c.oomKilled(t)
		}
		c.callBackend(ctrID, EventExit, info)
		if processID != ctrID {
			c.deleteExec(ct, processID, p)
		}
	})
}

// deleteExec removes an exited exec process from containerd and its FIFOs.
func (c *client) deleteExec(ct *container, execID string, p *process) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), cleanupTimeout)
	defer cancel()
	if p.proc != nil {
		if _, err := p.proc.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
			c.log.WithError(err).WithField("exec", execID).Debug("delete exited exec process")
		}
	}
	if p.fifos != nil {
		p.fifos.Remove()
	}
	c.mu.Lock()
	if ct.procs[execID] == p {
		delete(ct.procs, execID)
	}
	c.mu.Unlock()
}

func (c *client) deliver(ctrID string, et EventType, info EventInfo) {
	c.queue.Append(ctrID, func() { c.callBackend(ctrID, et, info) })
}

func (c *client) callBackend(ctrID string, et EventType, info EventInfo) {
	if err := c.backend.ProcessEvent(context.WithoutCancel(c.ctx), ctrID, et, info); err != nil {
		c.log.WithError(err).WithField("container", ctrID).WithField("event", et).Warn("backend failed to process event")
	}
}

// oomKilled tells whether the OOM killer killed a process of the task,
// by its cgroup's counter. containerd publishes a task's OOM event apart
// from its exit, with no order between them (the shim learns of it through
// an inotify watch the kernel notifies at most every 10 ms): an init killed
// by the OOM killer may exit before its OOM event arrives. The cgroup lives
// until the task is deleted, which the exit's handler does.
func (c *client) oomKilled(t containerd.Task) bool {
	ctx, cancel := context.WithTimeout(c.nsCtx(context.Background()), confirmTimeout)
	defer cancel()
	m, err := t.Metrics(ctx)
	if err != nil {
		c.log.WithError(err).WithField("container", t.ID()).Debug("read the OOM kill count of a killed task")
		return false
	}
	s, err := statsFromMetric(m)
	return err == nil && s.Memory.OOMKills > 0
}
