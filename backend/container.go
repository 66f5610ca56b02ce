package backend

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tendhq/tend/io/jsonlog"
)

// container is the engine's state of one container. rec and the fields
// marked (mu) are guarded by Engine.mu.
type container struct {
	rec Container // (mu)

	// op serialises lifecycle operations (start, stop, restart, pause,
	// resume, remove). Exit handling never takes it, so an operation may
	// hold it while waiting for an exit.
	op sync.Mutex

	changed  chan struct{} // (mu) closed and replaced on every change
	exits    int           // (mu) init exits handled
	taskLive bool          // (mu) an exit is owed for the current task
	starting chan struct{} // (mu) closed once an in-flight start or restore updated rec
	oomSeen  bool          // (mu) the current task was OOM-killed
	removed  bool          // (mu)

	unhealthyKill    bool // (mu) the next exit was caused by the on-unhealthy action
	unhealthyRestart bool // (mu) ... and should restart whatever the policy
	checkpointExit   bool // (mu) the next exit ends a checkpoint that stops the container

	restartGen    uint64        // (mu) identifies the pending restart
	restartCancel chan struct{} // (mu) closed to cancel the pending restart

	healthAdded bool // (mu) registered with the health scheduler
	healthDirty bool // (mu) rec.Health has probe results not yet written

	checkpointing bool // (mu) CRIU may be dumping it: no exec may start

	io *taskIO // (mu) stdio of the current task

	logw    *jsonlog.Writer
	attachs *attachSet

	saveMu    sync.Mutex
	seq       uint64 // (mu) bumped on every snapshot
	savedSeq  uint64 // (saveMu)
	saveDirty bool
}

// snapshot is a copy of a record to write, ordered by seq.
type snapshot struct {
	rec Container
	seq uint64
}

// snapLocked copies the record for save; nil once nothing may be written.
func (e *Engine) snapLocked(c *container) *snapshot {
	if e.abandoned || c.removed {
		return nil
	}
	c.seq++
	return &snapshot{rec: cloneRecord(c.rec), seq: c.seq}
}

// save writes a snapshot unless a newer one was written already.
func (e *Engine) save(c *container, s *snapshot) {
	if s == nil {
		return
	}
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	if s.seq <= c.savedSeq {
		return
	}
	e.mu.Lock()
	skip := e.abandoned || c.removed
	e.mu.Unlock()
	if skip {
		return
	}
	if err := e.store.write(&s.rec); err != nil {
		e.log.WithError(err).WithField("container", s.rec.ID).Error("persist container record")
		return
	}
	c.savedSeq = s.seq
}

// notifyLocked wakes everyone waiting for a change of c.
func (e *Engine) notifyLocked(c *container) {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (e *Engine) emitLocked(c *container, typ string, attrs map[string]string) {
	e.events.emit(Event{Time: e.clock.Now(), Type: typ, ContainerID: c.rec.ID, Name: c.rec.Name, Attributes: attrs})
}

func cloneRecord(r Container) Container {
	r.Config.Cmd = append([]string(nil), r.Config.Cmd...)
	r.Config.Env = append([]string(nil), r.Config.Env...)
	if r.Config.Labels != nil {
		m := make(map[string]string, len(r.Config.Labels))
		for k, v := range r.Config.Labels {
			m[k] = v
		}
		r.Config.Labels = m
	}
	if r.Config.Init != nil {
		v := *r.Config.Init
		r.Config.Init = &v
	}
	if r.Config.Health != nil {
		h := *r.Config.Health
		h.Test = append([]string(nil), h.Test...)
		r.Config.Health = &h
	}
	if r.Health != nil {
		h := r.Health.Clone()
		r.Health = &h
	}
	return r
}

// errTimedOut is waitChange's result when its timer fired.
var errTimedOut = errors.New("timed out")

// waitChange waits until cond holds (checked on every change of c), ctx is
// done or timer fires.
func (e *Engine) waitChange(ctx context.Context, c *container, cond func() bool, timer <-chan time.Time) error {
	for {
		e.mu.Lock()
		ch := c.changed
		e.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-timer:
			return errTimedOut
		case <-ctx.Done():
			return fmt.Errorf("container %s: %w", shortID(c.rec.ID), ctx.Err())
		}
	}
}
