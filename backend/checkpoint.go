package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/libcontainerd"
)

// Checkpoints are CRIU dumps of a container's processes, kept with the
// container under <Root>/containers/<id>/checkpoints/<name>/ (0700) and
// removed with it. A checkpoint holds only the processes: the root
// filesystem is the container's own, as it is when the checkpoint is
// restored.
const (
	checkpointsDir = "checkpoints"
	// checkpointMeta is written last, once CRIU succeeded: a directory
	// without it is a failed attempt, kept so that its dump.log can be read.
	checkpointMeta = "checkpoint.json"
	// exitReasonCheckpointed is the ExitReason of a container that a
	// checkpoint stopped.
	exitReasonCheckpointed = "checkpointed"
)

// restoreFrom is the checkpoint a start restores.
type restoreFrom struct {
	name, dir string
}

func (e *Engine) checkpointDir(id, name string) string {
	return filepath.Join(e.store.containerDir(id), checkpointsDir, name)
}

func validateCheckpointName(name string) error {
	if libcontainerd.ValidateID(name) != nil {
		return fmt.Errorf("invalid checkpoint name %q: want letters and digits joined by single '_', '.' or '-', at most 76 characters: %w", name, errdefs.ErrInvalidArgument)
	}
	return nil
}

// readCheckpoint reads the checkpoint name of container id: ErrNotFound
// when there is no complete one.
func (e *Engine) readCheckpoint(id, ref, name string) (Checkpoint, error) {
	data, err := os.ReadFile(filepath.Join(e.checkpointDir(id, name), checkpointMeta))
	if errors.Is(err, os.ErrNotExist) {
		return Checkpoint{}, fmt.Errorf("container %s has no checkpoint %q: list its checkpoints with `checkpoint ls`: %w", ref, name, errdefs.ErrNotFound)
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("read checkpoint %q of %s: %w", name, ref, err)
	}
	var cp Checkpoint
	if err := json.Unmarshal(data, &cp); err != nil || cp.Name != name {
		return Checkpoint{}, fmt.Errorf("checkpoint %q of %s: corrupt %s (%v): delete the checkpoint: %w", name, ref, checkpointMeta, err, errdefs.ErrFailedPrecondition)
	}
	return cp, nil
}

// CreateCheckpoint checkpoints the processes of a running or paused
// container with CRIU under the given name. Without leaveRunning the
// container stops once dumped, as after a manual stop: its restart policy
// does not restart it, and it is recorded exited with ExitReason
// "checkpointed" before CreateCheckpoint returns. With leaveRunning nothing
// about the container changes. A name in use fails with
// errdefs.ErrAlreadyExists, a container that is not running or paused with
// errdefs.ErrFailedPrecondition, and so does a dump CRIU refuses (the
// message names CRIU's log, kept in the checkpoint's directory; the
// container runs on). A "checkpoint" event is emitted.
func (e *Engine) CreateCheckpoint(ctx context.Context, ref, name string, leaveRunning bool) (retErr error) {
	if err := validateCheckpointName(name); err != nil {
		return err
	}
	c, err := e.lockContainer(ref)
	if err != nil {
		return err
	}
	defer c.op.Unlock()
	id := c.rec.ID
	c.mu.Lock()
	if !isActive(c.rec.State) {
		s := c.rec.State
		c.mu.Unlock()
		return fmt.Errorf("container %s is %s: only a running or paused container can be checkpointed: start it first: %w", ref, s, errdefs.ErrFailedPrecondition)
	}
	c.mu.Unlock()

	dir := e.checkpointDir(id, name)
	if _, err := e.readCheckpoint(id, ref, name); err == nil || !errdefs.IsNotFound(err) {
		return fmt.Errorf("container %s already has a checkpoint %q: delete it or pick another name: %w", ref, name, errdefs.ErrAlreadyExists)
	}
	// What is left is a failed attempt: this one replaces it.
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("checkpoint %s: remove the failed attempt in %s: %w", ref, dir, err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return fmt.Errorf("checkpoint %s: create %s: %w", ref, filepath.Dir(dir), err)
	}

	// CRIU freezes the container's cgroup while it dumps: a probe would
	// fail to start and count as a failure, and an exec whose start
	// overlaps the freeze is frozen half-joined, which hangs the dump.
	// Probes stop, and those in flight are waited for.
	c.mu.Lock()
	c.pending.checkpointing = true // refuses new execs until the dump is done
	defer func() {
		c.mu.Lock()
		c.pending.checkpointing = false
		c.mu.Unlock()
	}()
	if c.healthAdded && c.rec.State == StateRunning {
		e.health.Pause(id)
		defer func() {
			c.mu.Lock()
			if c.healthAdded && c.rec.State == StateRunning {
				e.health.Resume(id)
			}
			c.mu.Unlock()
		}()
	}
	c.mu.Unlock()
	err = e.waitProbes(ctx, id)
	// CRIU cannot dump the container with the engine's connection to its
	// tend-init open.
	e.probeConns.Drop(e.probeSocket(id))
	if err != nil {
		return fmt.Errorf("checkpoint %s: waiting for its health probes to end: %w", ref, err)
	}
	if err := e.waitKnownStatus(ctx, id); err != nil {
		return fmt.Errorf("checkpoint %s: waiting for its task to answer: %w", ref, err)
	}

	var exits int
	if !leaveRunning {
		// Recorded before the dump: the exit that follows is a manual
		// stop even if the engine dies before it is handled.
		c.mu.Lock()
		wasManual := c.rec.ManuallyStopped
		c.rec.ManuallyStopped = true
		c.pending.exit = exitCheckpoint
		exits = c.exits
		snap := e.snapLocked(c)
		c.mu.Unlock()
		e.save(c, snap)
		defer func() {
			if retErr == nil {
				return
			}
			c.mu.Lock()
			var snap *snapshot
			if c.pending.exit == exitCheckpoint { // no exit was handled: the task runs on
				c.pending.exit = exitUnrequested
				c.rec.ManuallyStopped = wasManual
				snap = e.snapLocked(c)
			}
			c.mu.Unlock()
			e.save(c, snap)
		}()
	}
	var opts []libcontainerd.CheckpointOption
	if !leaveRunning {
		opts = append(opts, libcontainerd.WithCheckpointExit())
	}
	if err := e.client.CreateCheckpoint(ctx, id, dir, opts...); err != nil {
		return err
	}
	cp := Checkpoint{Name: name, Created: e.clock.Now().UTC()}
	if err := writeCheckpointMeta(dir, cp); err != nil {
		return fmt.Errorf("checkpoint %s: %w", ref, err)
	}
	c.mu.Lock()
	e.emitLocked(c, "checkpoint", map[string]string{"checkpoint": name, "leave_running": fmt.Sprint(leaveRunning)})
	c.mu.Unlock()
	if leaveRunning {
		return nil
	}
	// CRIU killed the task; return once its exit is recorded.
	err = e.waitChange(ctx, c, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.exits > exits || !isActive(c.rec.State)
	}, nil)
	if err != nil {
		return fmt.Errorf("checkpoint %s was written; waiting for the container to stop: %w", name, err)
	}
	return nil
}

// writeCheckpointMeta marks a checkpoint complete, atomically.
func writeCheckpointMeta(dir string, cp Checkpoint) error {
	data, err := json.Marshal(cp)
	if err != nil {
		return fmt.Errorf("encode %s: %w", checkpointMeta, err)
	}
	tmp := filepath.Join(dir, "."+checkpointMeta)
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", checkpointMeta, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, checkpointMeta)); err != nil {
		return fmt.Errorf("write %s: %w", checkpointMeta, err)
	}
	return syncDir(dir)
}

// ListCheckpoints lists the checkpoints of a container, oldest first.
// Failed attempts are not listed.
func (e *Engine) ListCheckpoints(ctx context.Context, ref string) ([]Checkpoint, error) {
	c, err := e.resolve(ref)
	if err != nil {
		return nil, err
	}
	root := filepath.Join(e.store.containerDir(c.rec.ID), checkpointsDir)
	ents, err := os.ReadDir(root)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("list checkpoints of %s: %w", ref, err)
	}
	out := []Checkpoint{}
	for _, ent := range ents {
		if !ent.IsDir() || validateCheckpointName(ent.Name()) != nil {
			continue
		}
		cp, err := e.readCheckpoint(c.rec.ID, ref, ent.Name())
		if errdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			e.log.WithError(err).WithField("container", c.rec.ID).Warn("skipping a checkpoint")
			continue
		}
		out = append(out, cp)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// DeleteCheckpoint deletes a checkpoint of a container, or what a failed
// attempt under that name left: errdefs.ErrNotFound when there is neither.
func (e *Engine) DeleteCheckpoint(ctx context.Context, ref, name string) error {
	if err := validateCheckpointName(name); err != nil {
		return err
	}
	// A restore reading it or a dump writing it finishes first.
	c, err := e.lockContainer(ref)
	if err != nil {
		return err
	}
	defer c.op.Unlock()
	dir := e.checkpointDir(c.rec.ID, name)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("container %s has no checkpoint %q: list its checkpoints with `checkpoint ls`: %w", ref, name, errdefs.ErrNotFound)
	}
	// The marker goes first: a deletion cut short leaves a failed attempt,
	// never a checkpoint with missing images.
	if err := os.Remove(filepath.Join(dir, checkpointMeta)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete checkpoint %q of %s: %w", name, ref, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("delete checkpoint %q of %s: %w", name, ref, err)
	}
	return nil
}

// StartFromCheckpoint starts a created or exited container (or one with a
// pending restart) by restoring its processes from the named checkpoint
// instead of running its command afresh. As Start, it clears a manual stop,
// the restart count and the backoff; the container gets its log (the same
// file), attachers and health checks back, and a "start" event with the
// attribute checkpoint=<name> is emitted. An unknown checkpoint fails with
// errdefs.ErrNotFound, a running or paused container and a restore CRIU
// refuses with errdefs.ErrFailedPrecondition (the message names CRIU's
// log).
func (e *Engine) StartFromCheckpoint(ctx context.Context, ref, name string) error {
	if err := validateCheckpointName(name); err != nil {
		return err
	}
	c, err := e.lockContainer(ref)
	if err != nil {
		return err
	}
	defer c.op.Unlock()
	id := c.rec.ID
	c.mu.Lock()
	switch s := c.rec.State; s {
	case StateCreated, StateExited, StateRestarting:
	case StateRunning, StatePaused:
		c.mu.Unlock()
		return fmt.Errorf("container %s is %s: stop it before restoring a checkpoint into it: %w", ref, s, errdefs.ErrFailedPrecondition)
	default:
		c.mu.Unlock()
		return fmt.Errorf("container %s is %s: cannot start it%s: %w", ref, s, startHint(s), errdefs.ErrFailedPrecondition)
	}
	c.mu.Unlock()
	if _, err := e.readCheckpoint(id, ref, name); err != nil {
		return err
	}
	// A start never retries a restore from scratch (that would run the
	// command afresh), so a stopped task left in the way is deleted first.
	if st, err := e.client.Status(ctx, id); err == nil && (st == libcontainerd.StatusStopped || st == libcontainerd.StatusCreated) {
		if _, _, err := e.client.DeleteTask(ctx, id); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("start %s from checkpoint %q: delete the stopped task in the way: %w", ref, name, err)
		}
	}
	c.mu.Lock()
	e.cancelRestartLocked(c)
	c.rec.ManuallyStopped = false
	c.rec.RestartCount = 0
	c.rec.RestartDelay = 0
	c.mu.Unlock()
	return e.startTaskFrom(ctx, c, "", &restoreFrom{name: name, dir: e.checkpointDir(id, name)})
}

// probePoll is how often waitProbes looks for probes in flight.
const probePoll = 10 * time.Millisecond

// waitProbes waits until container id has no health probe process (being
// started or running). A cancelled probe is killed and reaped by the
// health scheduler, so this takes at most a probe's start.
func (e *Engine) waitProbes(ctx context.Context, id string) error {
	busy := func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, x := range e.execs {
			if x.probe && x.ctrID == id {
				return true
			}
		}
		return e.initProbes[id] > 0
	}
	if !busy() {
		return nil
	}
	// Probe exits are not change notifications of the container: poll.
	t := time.NewTicker(probePoll)
	defer t.Stop()
	for busy() {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// statusSettle bounds how long waitKnownStatus waits.
const statusSettle = 15 * time.Second

// waitKnownStatus waits (up to statusSettle) while containerd reports the
// task's status as unknown: it does so when the shim does not answer within
// its state timeout (a busy shim, an exec being started), and
// CreateCheckpoint would then refuse the task.
func (e *Engine) waitKnownStatus(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, statusSettle)
	defer cancel()
	t := time.NewTicker(10 * probePoll)
	defer t.Stop()
	for {
		st, err := e.client.Status(ctx, id)
		if err != nil || st != libcontainerd.StatusUnknown {
			return nil // CreateCheckpoint reports what is wrong
		}
		e.log.WithField("container", id).Debug("task status unknown before a checkpoint; asking again")
		select {
		case <-t.C:
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil
			}
			return ctx.Err()
		}
	}
}
