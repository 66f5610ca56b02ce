// Package cli implements the engine's commands on top of the API client:
// each command is a function taking an options struct that carries its
// inputs and writers, so the cobra layer only turns flags into options.
//
// Exit codes follow docker: StatusError carries the code for main; a
// container's exit code passes through run, start -a and exec; 125 means
// the engine or the flags were wrong; 126 and 127 mean the command could
// not be run or found.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/cmd/internal/api"
	"github.com/tendhq/tend/cmd/internal/client"
	libcontainerdtypes "github.com/tendhq/tend/libcontainerd/types"
)

// Exit codes besides a container's own.
const (
	ExitEngineError = 125                                    // the engine or the flags were wrong
	ExitCannotRun   = libcontainerdtypes.ExitCommandNotRun   // the command was found but could not be run
	ExitNotFound    = libcontainerdtypes.ExitCommandNotFound // the command was not found
)

// StatusError ends the CLI with Code; Err (may be nil for a plain
// container exit code) is printed as "Error: ...".
type StatusError struct {
	Code int
	Err  error
}

func (e *StatusError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *StatusError) Unwrap() error { return e.Err }

// startErrorCode maps the runtime's complaint about a command to docker's
// exit codes: 127 not found, 126 not runnable, else 125.
func startErrorCode(msg string) int {
	if code := libcontainerdtypes.CommandExitCode(msg); code != 0 {
		return code
	}
	return ExitEngineError
}

// Streams are a command's standard streams.
type Streams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// RunOptions are the inputs of Run and Create.
type RunOptions struct {
	Create      api.CreateOptions
	Detach      bool
	Interactive bool // -i: keep stdin open and send it
	Streams
}

// Create creates a container and prints its id.
func Create(ctx context.Context, c *client.Client, opts RunOptions) error {
	ct, err := c.Create(ctx, opts.Create)
	if err != nil {
		return &StatusError{Code: ExitEngineError, Err: err}
	}
	fmt.Fprintln(opts.Stdout, ct.ID)
	return nil
}

// Run creates and starts a container; attached (not Detach) it streams the
// container's output and returns its exit code as a StatusError.
func Run(ctx context.Context, c *client.Client, opts RunOptions) error {
	opts.Create.OpenStdin = opts.Interactive
	ct, err := c.Create(ctx, opts.Create)
	if err != nil {
		return &StatusError{Code: ExitEngineError, Err: err}
	}
	if opts.Detach {
		if err := c.Start(ctx, ct.ID); err != nil {
			return &StatusError{Code: startErrorCode(err.Error()), Err: err}
		}
		fmt.Fprintln(opts.Stdout, ct.ID)
		return nil
	}
	err = attachAndWait(ctx, c, ct.ID, true, opts.Interactive, opts.Create.Tty, opts.Streams)
	var se *StatusError
	if opts.Create.AutoRemove && errors.As(err, &se) && se.Err != nil {
		// It never ran (or the engine failed): --rm still means no
		// container is left behind, as with docker.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = c.RemoveContainer(rctx, ct.ID, api.RemoveOptions{Force: true, Volumes: true})
	} else if opts.Create.AutoRemove && (err == nil || errors.As(err, &se)) {
		// As docker run --rm: return once the container (and its
		// anonymous volumes) are gone, so that the next command does not
		// find it being removed.
		if _, werr := c.Wait(ctx, ct.ID, "removed"); werr != nil && !errdefs.IsNotFound(werr) && ctx.Err() == nil {
			fmt.Fprintf(opts.Stderr, "Error: waiting for the removal of %s: %v\n", ct.ID[:12], werr)
		}
	}
	return err
}

// StartOptions are the inputs of Start.
type StartOptions struct {
	Refs        []string
	Attach      bool
	Interactive bool
	// Checkpoint restores the (one) container from this checkpoint.
	Checkpoint string
	Streams
}

// Start starts containers; with Attach (one container) it streams the
// output and returns the exit code.
func Start(ctx context.Context, c *client.Client, opts StartOptions) error {
	if opts.Checkpoint != "" {
		switch {
		case len(opts.Refs) != 1:
			return &StatusError{Code: ExitEngineError, Err: errors.New("you cannot restore multiple containers at once: give one container with --checkpoint")}
		case opts.Attach || opts.Interactive:
			return &StatusError{Code: ExitEngineError, Err: fmt.Errorf("--checkpoint cannot be combined with --attach or --interactive: start it, then run `attach %s`", opts.Refs[0])}
		}
		if err := c.StartFromCheckpoint(ctx, opts.Refs[0], opts.Checkpoint); err != nil {
			return &StatusError{Code: 1, Err: err}
		}
		fmt.Fprintln(opts.Stdout, opts.Refs[0])
		return nil
	}
	if opts.Attach || opts.Interactive {
		if len(opts.Refs) != 1 {
			return &StatusError{Code: ExitEngineError, Err: errors.New("you cannot start and attach multiple containers at once")}
		}
		ct, err := c.Inspect(ctx, opts.Refs[0])
		if err != nil {
			return &StatusError{Code: 1, Err: err}
		}
		return attachAndWait(ctx, c, ct.ID, true, opts.Interactive && ct.Config.OpenStdin, ct.Config.Tty, opts.Streams)
	}
	return forEach(opts.Refs, opts.Stderr, func(ref string) error {
		if err := c.Start(ctx, ref); err != nil {
			return err
		}
		fmt.Fprintln(opts.Stdout, ref)
		return nil
	})
}

// AttachOptions are the inputs of Attach.
type AttachOptions struct {
	Ref     string
	NoStdin bool
	Streams
}

// Attach attaches to a running container until it stops.
func Attach(ctx context.Context, c *client.Client, opts AttachOptions) error {
	ct, err := c.Inspect(ctx, opts.Ref)
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	return attachAndWait(ctx, c, ct.ID, false, ct.Config.OpenStdin && !opts.NoStdin, ct.Config.Tty, opts.Streams)
}

// attachAndWait streams a container's output (and stdin when asked),
// starting it when start is set, and returns its exit code.
func attachAndWait(ctx context.Context, c *client.Client, id string, start, stdin, tty bool, s Streams) error {
	ao := client.AttachOptions{Stdin: stdin, Start: start}
	if tty {
		ao.Width, ao.Height = terminalSize(s)
	}
	st, err := c.Attach(ctx, id, ao)
	if err != nil {
		return &StatusError{Code: ExitEngineError, Err: err}
	}
	resize := func(ctx context.Context, w, h uint32) error { return c.Resize(ctx, id, w, h) }
	return stream(ctx, st, stdin, tty, s, resize, nil)
}

// ExecOptions are the inputs of Exec.
type ExecOptions struct {
	Ref         string
	Cmd, Env    []string
	WorkingDir  string
	User        string
	Interactive bool
	Tty         bool
	Detach      bool
	Streams
}

// Exec runs a command in a running container and returns its exit code.
func Exec(ctx context.Context, c *client.Client, opts ExecOptions) error {
	cfg := api.ExecConfig{Cmd: opts.Cmd, Env: opts.Env, WorkingDir: opts.WorkingDir, User: opts.User, Tty: opts.Tty, AttachStdin: opts.Interactive, Detach: opts.Detach}
	if opts.Detach {
		cfg.Tty, cfg.AttachStdin, opts.Tty, opts.Interactive = false, false, false, false
	}
	if opts.Tty {
		cfg.Width, cfg.Height = terminalSize(opts.Streams)
	}
	st, err := c.Exec(ctx, opts.Ref, cfg)
	if err != nil {
		return execError(err)
	}
	var mu sync.Mutex
	execID := ""
	ready := make(chan struct{})
	var once sync.Once
	onStatus := func(s api.StreamStatus) {
		if s.ExecID != "" {
			mu.Lock()
			execID = s.ExecID
			mu.Unlock()
		}
		once.Do(func() { close(ready) })
	}
	resize := func(ctx context.Context, w, h uint32) error {
		// The exec id arrives in the first status frame; resizes wait
		// for it.
		select {
		case <-ready:
		case <-ctx.Done():
			return ctx.Err()
		}
		mu.Lock()
		id := execID
		mu.Unlock()
		if id == "" {
			return nil
		}
		return c.ResizeExec(ctx, id, w, h)
	}
	err = stream(ctx, st, opts.Interactive, opts.Tty, opts.Streams, resize, onStatus)
	var se *StatusError
	if errors.As(err, &se) && se.Err != nil {
		return execError(se.Err)
	}
	return err
}

// execError maps a failed exec to docker's (20.10+) exit codes: 1 for a
// container that is not running, paused or unknown (the daemon refused
// it), 126 for a command that could not be run, found or not, or whose
// user the container does not know (docker fails that exec's start), and
// 125 for the engine failing.
func execError(err error) error {
	switch {
	case startErrorCode(err.Error()) != ExitEngineError, isExecUserError(err):
		return &StatusError{Code: ExitCannotRun, Err: err}
	case errdefs.IsFailedPrecondition(err) || errdefs.IsNotFound(err) || errdefs.IsConflict(err):
		return &StatusError{Code: 1, Err: err}
	}
	return &StatusError{Code: ExitEngineError, Err: err}
}

// terminalSize is the size of the user's terminal, or zeros.
func terminalSize(s Streams) (uint32, uint32) {
	if term := openTerminal(s.Stdin, s.Stdout); term != nil {
		if w, h, ok := term.size(); ok {
			return w, h
		}
	}
	return 0, 0
}

// stream runs a hijacked session: raw mode and resizes for a TTY, stdin to
// the daemon, frames to stdout and stderr, and the final status as the
// result.
func stream(ctx context.Context, st *client.Stream, stdin, tty bool, s Streams, resize func(context.Context, uint32, uint32) error, onStatus func(api.StreamStatus)) error {
	defer st.Close()
	if tty {
		if term := openTerminal(s.Stdin, s.Stdout); term != nil {
			if stdin {
				restore, err := term.makeRaw()
				if err != nil {
					return &StatusError{Code: ExitEngineError, Err: fmt.Errorf("set terminal raw mode: %w", err)}
				}
				defer restore()
			}
			rctx, cancel := context.WithCancel(ctx)
			stop := term.watchResize(rctx, resize)
			defer func() { cancel(); stop() }()
		}
	}
	if stdin && s.Stdin != nil {
		// The copy ends when stdin does, or when the session's
		// connection closes; a Read blocked on a terminal can only end
		// with the process, which is about to exit then.
		go func() {
			_, _ = io.Copy(st, s.Stdin)
			_ = st.CloseWrite()
		}()
	}
	if onStatus == nil {
		onStatus = func(api.StreamStatus) {}
	}
	status, err := api.ReadFrames(st, s.Stdout, s.Stderr, onStatus)
	if err != nil {
		if ctx.Err() != nil {
			return &StatusError{Code: ExitEngineError, Err: ctx.Err()}
		}
		return &StatusError{Code: ExitEngineError, Err: err}
	}
	if status.Error != "" {
		err := api.ErrorFrom(0, api.ErrorResponse{Message: status.Error, Class: status.Class})
		return &StatusError{Code: startErrorCode(status.Error), Err: err}
	}
	if status.ExitCode != 0 {
		return &StatusError{Code: status.ExitCode}
	}
	return nil
}

// forEach applies fn to each ref, printing each failure as docker does, and
// fails with status 1 when any did.
func forEach(refs []string, stderr io.Writer, fn func(ref string) error) error {
	failed := 0
	var last error
	for _, ref := range refs {
		if err := fn(ref); err != nil {
			failed++
			last = err
			if len(refs) > 1 {
				fmt.Fprintf(stderr, "Error: %v\n", err)
			}
		}
	}
	switch {
	case failed == 0:
		return nil
	case len(refs) == 1:
		return &StatusError{Code: 1, Err: last}
	default:
		return &StatusError{Code: 1}
	}
}

// isExecUserError reports whether the daemon refused an exec's -u: a user
// or group the container's /etc/passwd and /etc/group do not have, or a
// malformed one (libcontainerd's user errors, invalid arguments that name
// the user first).
func isExecUserError(err error) bool {
	msg := err.Error()
	return errdefs.IsInvalidArgument(err) && strings.Contains(msg, "user \"") &&
		(strings.Contains(msg, "/etc/passwd") || strings.Contains(msg, "want name, uid, uid:gid or name:group"))
}
