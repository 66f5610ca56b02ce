package libcontainerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	runc "github.com/containerd/containerd/api/types/runc/options"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
)

// checkpointLabel marks the images containerd's task.Checkpoint creates.
const checkpointLabel = "containerd.io/checkpoint"

// criuHint says what to do when CRIU cannot checkpoint or restore.
const criuHint = "check that a working criu (4.x on recent kernels; see scripts/criu.sh) is first in containerd's PATH, and that the container uses nothing CRIU cannot dump (file locks, external sockets, unsupported mounts such as ramfs)"

// CheckpointOption configures CreateCheckpoint and CheckpointImage.
type CheckpointOption func(*checkpointConfig)

type checkpointConfig struct {
	exit bool
}

// WithCheckpointExit makes the task exit once it is checkpointed (killed
// after the dump; its exit reaches the Backend as an ordinary EventExit with
// code 137). Without it the task is left running, or paused if it was.
func WithCheckpointExit() CheckpointOption {
	return func(c *checkpointConfig) { c.exit = true }
}

func checkpointConfigOf(opts []CheckpointOption) checkpointConfig {
	var cfg checkpointConfig
	for _, opt := range opts {
		opt(&cfg)
	}
	return cfg
}

// CreateCheckpoint checkpoints the task into dir with CRIU. CRIU's log
// (dump.log) is written into dir too, as criu does by default.
func (c *client) CreateCheckpoint(ctx context.Context, id, dir string, opts ...CheckpointOption) error {
	ctx, err := c.enter(ctx)
	if err != nil {
		return err
	}
	cfg := checkpointConfigOf(opts)
	if dir == "" {
		return fmt.Errorf("checkpoint %s: no directory given: pass the directory to write the checkpoint into: %w", id, errdefs.ErrInvalidArgument)
	}
	if !filepath.IsAbs(dir) {
		// The shim runs in another working directory.
		abs, err := filepath.Abs(dir)
		if err != nil {
			return fmt.Errorf("checkpoint %s: directory %q: %v: %w", id, dir, err, errdefs.ErrInvalidArgument)
		}
		dir = abs
	}
	t, err := c.checkpointableTask(ctx, id)
	if err != nil {
		return err
	}
	// CRIU would overwrite an older checkpoint file by file, leaving a mix.
	if exists(filepath.Join(dir, "inventory.img")) {
		return fmt.Errorf("checkpoint %s: %s already holds a checkpoint: remove it or pick another directory: %w", id, dir, errdefs.ErrAlreadyExists)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("checkpoint %s: create %s: %w", id, dir, err)
	}
	if _, err := t.Checkpoint(ctx, containerd.WithCheckpointImagePath(dir), withCheckpointOptions(dir, cfg.exit)); err != nil {
		return checkpointError(id, fmt.Sprintf("into %s", dir), filepath.Join(dir, "dump.log"), err)
	}
	return nil
}

// CheckpointImage checkpoints the task with CRIU into an image in
// containerd's content store.
func (c *client) CheckpointImage(ctx context.Context, id, name string, opts ...CheckpointOption) (_ string, retErr error) {
	ctx, err := c.enter(ctx)
	if err != nil {
		return "", err
	}
	cfg := checkpointConfigOf(opts)
	if name == "" {
		// containerd's own default has second resolution: two checkpoints in
		// one second would collide.
		name = fmt.Sprintf("checkpoint/%s:%d", id, time.Now().UnixNano())
	}
	if _, err := c.cc.ImageService().Get(ctx, name); err == nil {
		return "", fmt.Errorf("checkpoint %s: an image named %q already exists: pick another name or delete it: %w", id, name, errdefs.ErrAlreadyExists)
	} else if !errdefs.IsNotFound(err) {
		return "", fmt.Errorf("checkpoint %s: look up image %q: %w", id, name, err)
	}
	t, err := c.checkpointableTask(ctx, id)
	if err != nil {
		return "", err
	}
	// containerd dumps into a temporary directory it removes; the log goes
	// to a directory of ours, kept only when it is needed.
	work, err := os.MkdirTemp("", "tend-criu-"+id+"-")
	if err != nil {
		return "", fmt.Errorf("checkpoint %s: create CRIU work dir: %w", id, err)
	}
	defer func() {
		if retErr == nil || !exists(filepath.Join(work, "dump.log")) {
			os.RemoveAll(work)
		}
	}()
	// task.Checkpoint holds a lease while it writes the content; the image
	// it creates is a GC root and its index references every blob with
	// containerd.io/gc.ref.content labels, so nothing else is needed to keep
	// the checkpoint.
	img, err := t.Checkpoint(ctx, containerd.WithCheckpointName(name), withCheckpointOptions(work, cfg.exit))
	if err != nil {
		return "", checkpointError(id, fmt.Sprintf("into image %q", name), filepath.Join(work, "dump.log"), err)
	}
	return img.Name(), nil
}

// DeleteCheckpointImage deletes a checkpoint image; containerd collects
// its content.
func (c *client) DeleteCheckpointImage(ctx context.Context, name string) error {
	ctx, err := c.enter(ctx)
	if err != nil {
		return err
	}
	if _, err := c.checkpointImage(ctx, name); err != nil {
		return fmt.Errorf("delete checkpoint: %w", err)
	}
	if err := c.cc.ImageService().Delete(ctx, name); err != nil {
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("delete checkpoint: no checkpoint image %q: %w", name, errdefs.ErrNotFound)
		}
		return fmt.Errorf("delete checkpoint image %q: %w", name, err)
	}
	return nil
}

// checkpointableTask returns the container's task when it is running or
// paused, ErrFailedPrecondition otherwise.
func (c *client) checkpointableTask(ctx context.Context, id string) (containerd.Task, error) {
	_, t, err := c.task(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := requireStatus(ctx, id, t, "checkpoint it", containerd.Running, containerd.Paused); err != nil {
		return nil, err
	}
	return t, nil
}

// withCheckpointOptions sets runc's checkpoint options: CRIU's work
// directory (where dump.log goes) and whether the task exits afterwards.
func withCheckpointOptions(work string, exit bool) containerd.CheckpointTaskOpts {
	return func(r *containerd.CheckpointTaskInfo) error {
		if r.Options == nil {
			r.Options = &runc.CheckpointOptions{}
		}
		o, ok := r.Options.(*runc.CheckpointOptions)
		if !ok {
			return fmt.Errorf("checkpoint options are %T, not runc's: only the runc runtime can checkpoint: %w", r.Options, errdefs.ErrNotImplemented)
		}
		o.Exit = exit
		o.WorkPath = work
		return nil
	}
}

// checkpointError classifies an error of task.Checkpoint. What the shim
// reports of a failed runc or CRIU run is unclassified: that is a
// precondition (a working CRIU, a dumpable container) the caller must fix,
// and the log says which.
func checkpointError(id, where, logPath string, err error) error {
	switch {
	case errdefs.IsNotFound(err):
		return fmt.Errorf("checkpoint %s: the task is gone (it exited): %w", id, errdefs.ErrFailedPrecondition)
	case classified(err):
		return fmt.Errorf("checkpoint %s %s: %w", id, where, err)
	}
	return fmt.Errorf("checkpoint %s %s: CRIU failed: %s: %s: %s: %w", id, where, oneLine(err), logNote(logPath), criuHint, errdefs.ErrFailedPrecondition)
}

// restoreError classifies an error of starting a task from a checkpoint.
func restoreError(id, from, logPath string, err error) error {
	if classified(err) || errdefs.IsNotFound(err) {
		return fmt.Errorf("start %s from checkpoint %s: %w", id, from, err)
	}
	return fmt.Errorf("start %s from checkpoint %s: CRIU restore failed: %s: %s: %s: %w", id, from, oneLine(err), logNote(logPath), criuHint, errdefs.ErrFailedPrecondition)
}

// classified tells errors containerd gave a class (the call was cancelled,
// containerd is unreachable, a name is taken...) from the unclassified ones
// the shim returns when runc or CRIU failed.
func classified(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errdefs.IsCanceled(err) || errdefs.IsDeadlineExceeded(err) || errdefs.IsUnavailable(err) ||
		errdefs.IsAlreadyExists(err) || errdefs.IsInvalidArgument(err) || errdefs.IsFailedPrecondition(err) ||
		errdefs.IsNotImplemented(err) || errdefs.IsPermissionDenied(err) || errdefs.IsResourceExhausted(err)
}

// logNote points at CRIU's log, or says that there is none.
func logNote(path string) string {
	if !exists(path) {
		return fmt.Sprintf("CRIU wrote no log (%s is missing), so it probably did not run", path)
	}
	return "CRIU log: " + path
}

// oneLine joins the lines of runc's multi-line messages.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// checkpointImage returns the checkpoint image name: ErrNotFound when there
// is none, ErrInvalidArgument when the image is not a checkpoint.
func (c *client) checkpointImage(ctx context.Context, name string) (images.Image, error) {
	if name == "" {
		return images.Image{}, fmt.Errorf("no checkpoint image named: pass the name CheckpointImage returned: %w", errdefs.ErrInvalidArgument)
	}
	img, err := c.cc.ImageService().Get(ctx, name)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return images.Image{}, fmt.Errorf("no checkpoint image %q: create it with CheckpointImage: %w", name, errdefs.ErrNotFound)
		}
		return images.Image{}, fmt.Errorf("look up checkpoint image %q: %w", name, err)
	}
	if img.Labels[checkpointLabel] != "true" {
		return images.Image{}, fmt.Errorf("image %q is not a checkpoint (no %s=true label): pass a name CheckpointImage returned: %w", name, checkpointLabel, errdefs.ErrInvalidArgument)
	}
	return img, nil
}

// restorePlan is how Start restores a task from a checkpoint.
type restorePlan struct {
	from    string // the checkpoint, for messages
	work    string // CRIU's work directory: restore.log goes there
	ownWork bool   // work is ours to remove once the restore succeeded
	opts    []containerd.NewTaskOpts
}

// planRestore checks the checkpoint Start is asked to restore and returns
// the task options for it; nil when Start runs the process afresh.
func (c *client) planRestore(ctx context.Context, id string, cfg *startConfig) (*restorePlan, error) {
	if cfg.checkpointDir == "" && cfg.checkpointImage == "" {
		return nil, nil
	}
	if cfg.checkpointDir != "" && cfg.checkpointImage != "" {
		return nil, fmt.Errorf("start %s: both a checkpoint directory and a checkpoint image given: pass one: %w", id, errdefs.ErrInvalidArgument)
	}
	p := &restorePlan{}
	if cfg.checkpointWork != "" {
		abs, err := filepath.Abs(cfg.checkpointWork)
		if err != nil {
			return nil, fmt.Errorf("start %s: CRIU work directory %q: %v: %w", id, cfg.checkpointWork, err, errdefs.ErrInvalidArgument)
		}
		p.work = abs
	}
	if dir := cfg.checkpointDir; dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, fmt.Errorf("start %s: checkpoint directory %q: %v: %w", id, dir, err, errdefs.ErrInvalidArgument)
		}
		// A runc checkpoint has CRIU's inventory and runc's list of the
		// task's stdio; runc needs both.
		for _, f := range []string{"inventory.img", "descriptors.json"} {
			if _, err := os.Stat(filepath.Join(abs, f)); err != nil {
				return nil, fmt.Errorf("start %s: no checkpoint in %s (%v): pass a directory CreateCheckpoint wrote: %w", id, abs, err, errdefs.ErrNotFound)
			}
		}
		p.from = abs
		p.opts = append(p.opts, containerd.WithRestoreImagePath(abs))
	} else {
		img, err := c.checkpointImage(ctx, cfg.checkpointImage)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", id, err)
		}
		p.from = fmt.Sprintf("image %q", img.Name)
		p.opts = append(p.opts, containerd.WithTaskCheckpoint(containerd.NewImage(c.cc, img)))
	}
	if p.work == "" {
		work, err := os.MkdirTemp("", "tend-criu-"+id+"-")
		if err != nil {
			return nil, fmt.Errorf("start %s: create CRIU work dir: %w", id, err)
		}
		p.work, p.ownWork = work, true
	} else if err := os.MkdirAll(p.work, 0o700); err != nil {
		return nil, fmt.Errorf("start %s: create CRIU work dir: %w", id, err)
	}
	p.opts = append(p.opts, containerd.WithRestoreWorkPath(p.work))
	return p, nil
}

// error classifies an error of NewTask or Start of the restored task.
func (p *restorePlan) error(id string, err error) error {
	return restoreError(id, p.from, filepath.Join(p.work, "restore.log"), err)
}

// done removes a work directory of ours, unless the restore failed and
// CRIU left its log there for the error to name.
func (p *restorePlan) done(failed bool) {
	if p.ownWork && (!failed || !exists(filepath.Join(p.work, "restore.log"))) {
		os.RemoveAll(p.work)
	}
}
