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
// marked (mu) are guarded by mu, the container's own lock: operations on
// different containers never wait for each other.
//
// Lock order: a lock is only taken while holding locks earlier in
//
//	container.op -> container.saveMu -> container.mu -> Engine.mu
//
// never the reverse. Engine.mu guards only the engine's maps (containers,
// names, execs, init probes) and the closed flag; it is a leaf: code that
// walks the maps copies the containers out and locks each one after
// releasing Engine.mu. Events of a container are emitted with its mu held,
// so they are in order per container. ID and Name of rec never change and
// are read without a lock.
type container struct {
	// op serialises lifecycle operations (start, stop, restart, pause,
	// resume, remove, checkpoint). Exit handling never takes it, so an
	// operation may hold it while waiting for an exit.
	op sync.Mutex

	mu  sync.Mutex
	rec Container // (mu)

	changed  chan struct{} // (mu) closed and replaced on every change
	exits    int           // (mu) init exits handled
	taskLive bool          // (mu) an exit is owed for the current task
	// exitTaken: the exit handler has the owed exit in hand and has not
	// recorded it yet (it deletes the task first).
	exitTaken bool          // (mu)
	starting  chan struct{} // (mu) closed once an in-flight start or restore updated rec
	oomSeen   bool          // (mu) the current task was OOM-killed
	removed   bool          // (mu)
	pending   pending       // (mu) what the engine set in motion and has not seen through

	restart restartManager // (mu) the pending restart

	healthAdded bool // (mu) registered with the health scheduler
	healthDirty bool // (mu) rec.Health has probe results not yet written

	io *taskIO // (mu) stdio of the current task

	logw    *jsonlog.Writer
	attachs *attachSet

	saveMu   sync.Mutex
	seq      uint64 // (mu) bumped on every snapshot
	savedSeq uint64 // (saveMu)

	// noTask: containerd has no task for it, as the engine knows
	// without asking (none was started yet, or the exit handler deleted
	// the last one and none started since). (mu)
	noTask bool
}

// pending is what the engine set in motion on a container and has not yet
// seen through. Its fields are independent: a checkpoint dump may be in
// progress while an exit cause is recorded.
type pending struct {
	// exit says why the next exit of the task happens.
	exit exitCause
	// checkpointing: CRIU may be dumping the container: no exec may start.
	checkpointing bool
}

// exitCause is why the engine expects the container's task to exit next.
type exitCause int

const (
	// exitUnrequested: nothing the engine did; the restart policy decides.
	exitUnrequested exitCause = iota
	// exitUnhealthyKill: the on-unhealthy action "kill" killed it.
	exitUnhealthyKill
	// exitUnhealthyRestart: the on-unhealthy action "restart" killed it;
	// it restarts whatever the policy.
	exitUnhealthyRestart
	// exitCheckpoint: a checkpoint that stops the container ends it.
	exitCheckpoint
)

// unhealthy reports whether the on-unhealthy action caused the exit.
func (x exitCause) unhealthy() bool { return x == exitUnhealthyKill || x == exitUnhealthyRestart }

// snapshot is a copy of a record to write, ordered by seq.
type snapshot struct {
	rec Container
	seq uint64
}

// snapLocked copies the record for save, with c.mu held; nil once nothing
// may be written.
func (e *Engine) snapLocked(c *container) *snapshot {
	if e.abandoned.Load() || c.removed {
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
	c.mu.Lock()
	skip := e.abandoned.Load() || c.removed
	c.mu.Unlock()
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
	e.emitAtLocked(c, e.clock.Now(), typ, attrs)
}

// emitAtLocked emits an event that happened at a time of its own (an exit).
// Every container event carries docker's attributes: the container's
// labels, its name and its image as the user gave it.
func (e *Engine) emitAtLocked(c *container, at time.Time, typ string, attrs map[string]string) {
	all := make(map[string]string, len(attrs)+len(c.rec.Config.Labels)+2)
	for k, v := range c.rec.Config.Labels {
		all[k] = v
	}
	for k, v := range attrs {
		all[k] = v
	}
	all["name"] = c.rec.Name
	if img := c.rec.ImageName; img != "" {
		all["image"] = img
	} else if img := c.rec.Config.Image; img != "" {
		all["image"] = img
	}
	e.events.emit(Event{Time: at, Type: typ, ContainerID: c.rec.ID, Name: c.rec.Name, Attributes: all})
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
	cloneNetworkConfig(&r)
	r.Config.Binds = append([]string(nil), r.Config.Binds...)
	r.Config.Mounts = append([]Mount(nil), r.Config.Mounts...) // options behind pointers never change
	r.Mounts = append([]MountPoint(nil), r.Mounts...)
	return r
}

// errTimedOut is waitChange's result when its timer fired.
var errTimedOut = errors.New("timed out")

// waitChange waits until cond holds (checked on every change of c), ctx is
// done or timer fires.
func (e *Engine) waitChange(ctx context.Context, c *container, cond func() bool, timer <-chan time.Time) error {
	for {
		c.mu.Lock()
		ch := c.changed
		c.mu.Unlock()
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
