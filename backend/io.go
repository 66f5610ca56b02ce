package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/io/attach"
	"github.com/tendhq/tend/io/jsonlog"
	"github.com/tendhq/tend/libcontainerd"
)

// taskIO is the stdio of one task of a container: the copy goroutines
// (owned by attach.IO, waited for and closed by libcontainerd when the task
// is deleted), the log streams and the stdin pipe the attachers feed.
type taskIO struct {
	io             *attach.IO
	stdout, stderr *sink
	stdinW         *io.PipeWriter
}

// finish flushes the log streams and ends stdin after the task exited and
// its output was drained.
func (t *taskIO) finish() {
	t.stdout.close()
	t.stderr.close()
	if t.stdinW != nil {
		t.stdinW.Close()
	}
}

// close abandons a live task's stdio (engine shutdown): the engine's ends of
// the FIFOs are closed; the next engine re-opens them.
func (t *taskIO) close() {
	if t.stdinW != nil {
		t.stdinW.Close()
	}
	t.io.Close()
	t.io.Wait()
	t.finish()
}

// stdioCallback connects a new or restored task of c to its log, its
// attachers and (with OpenStdin) their input.
func (e *Engine) stdioCallback(c *container) libcontainerd.StdioCallback {
	return func(cfg cio.Config, pipes libcontainerd.Pipes) (cio.IO, error) {
		t := &taskIO{
			stdout: &sink{log: c.logw.Stream("stdout"), set: c.attachs, stderr: false},
			stderr: &sink{log: c.logw.Stream("stderr"), set: c.attachs, stderr: true},
		}
		streams := attach.Streams{Stdout: t.stdout, Stderr: t.stderr}
		if pipes.Stdin != nil {
			pr, pw := io.Pipe()
			t.stdinW = pw
			streams.Stdin = pr
			c.attachs.setStdin(pw)
		}
		t.io = attach.New(cfg, pipes.Stdin, pipes.Stdout, pipes.Stderr, streams)
		c.mu.Lock()
		c.io = t
		c.mu.Unlock()
		return t.io, nil
	}
}

// sink receives one output stream of a task: it goes to the log and to
// every attacher. It never fails, so the output is never left unread; a slow
// attacher slows the container's output down, as in Docker.
type sink struct {
	log    io.WriteCloser
	set    *attachSet
	stderr bool

	once sync.Once
}

func (s *sink) Write(p []byte) (int, error) {
	if _, err := s.log.Write(p); err != nil && !errors.Is(err, jsonlog.ErrClosed) {
		s.once.Do(func() { logger().WithError(err).Warn("container log write failed; output still goes to attachers") })
	}
	s.set.write(s.stderr, p)
	return len(p), nil
}

func (s *sink) close() { s.log.Close() }

// attachSet holds the attachers of one container.
type attachSet struct {
	mu     sync.Mutex
	next   int
	outs   map[int]*attacher
	stdinW *io.PipeWriter // of the current task; nil without OpenStdin
}

type attacher struct {
	stdout, stderr io.Writer
	done           chan struct{}
	once           sync.Once
}

func (a *attacher) stop() { a.once.Do(func() { close(a.done) }) }

func newAttachSet() *attachSet { return &attachSet{outs: make(map[int]*attacher)} }

func (s *attachSet) setStdin(w *io.PipeWriter) {
	s.mu.Lock()
	s.stdinW = w
	s.mu.Unlock()
}

func (s *attachSet) stdin() *io.PipeWriter {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stdinW
}

func (s *attachSet) add(a *attacher) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	s.outs[s.next] = a
	return s.next
}

func (s *attachSet) remove(id int) {
	s.mu.Lock()
	a := s.outs[id]
	delete(s.outs, id)
	s.mu.Unlock()
	if a != nil {
		a.stop()
	}
}

func (s *attachSet) closeAll() {
	s.mu.Lock()
	outs := s.outs
	s.outs = make(map[int]*attacher)
	s.mu.Unlock()
	for _, a := range outs {
		a.stop()
	}
}

// write copies p to every attacher; one whose writer fails is detached.
func (s *attachSet) write(stderr bool, p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, a := range s.outs {
		w := a.stdout
		if stderr {
			w = a.stderr
		}
		if w == nil {
			continue
		}
		if _, err := w.Write(p); err != nil {
			delete(s.outs, id)
			a.stop()
		}
	}
}

// AttachOptions are the streams of an attacher; any may be nil.
type AttachOptions struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Attach connects streams to the container's main process from now on: its
// output is copied to Stdout and Stderr (with a TTY everything arrives on
// Stdout) and, for a container created with OpenStdin, Stdin feeds the
// process; when Stdin reaches EOF the process's stdin is closed. Several
// attachers may be attached at once. detach, or the end of ctx, stops the
// copies; a Stdin read already in progress ends when it returns. A container
// that is not running is an errdefs.ErrFailedPrecondition.
func (e *Engine) Attach(ctx context.Context, ref string, opts AttachOptions) (detach func(), err error) {
	c, err := e.lookup(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if !isActive(c.rec.State) && c.rec.State != StateRestarting {
		s := c.rec.State
		c.mu.Unlock()
		return nil, fmt.Errorf("container %s is %s: you cannot attach to a stopped container, start it first: %w", ref, s, errdefs.ErrFailedPrecondition)
	}
	openStdin := c.rec.Config.OpenStdin
	c.mu.Unlock()
	if opts.Stdin != nil && !openStdin {
		return nil, fmt.Errorf("container %s was created without open stdin: attach without stdin: %w", ref, errdefs.ErrInvalidArgument)
	}
	a := &attacher{stdout: opts.Stdout, stderr: opts.Stderr, done: make(chan struct{})}
	key := c.attachs.add(a)
	detach = func() { c.attachs.remove(key) }
	// Both goroutines are owned by the attacher and end with it.
	go func() {
		select {
		case <-ctx.Done():
			detach()
		case <-a.done:
		}
	}()
	if opts.Stdin != nil {
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, rerr := opts.Stdin.Read(buf)
				select {
				case <-a.done:
					return
				default:
				}
				if n > 0 {
					if w := c.attachs.stdin(); w != nil {
						w.Write(buf[:n])
					}
				}
				if rerr != nil {
					if errors.Is(rerr, io.EOF) {
						// Ends the task's stdin copy once it has
						// written what it read: the copy then closes
						// our end of the FIFO, and libcontainerd has
						// containerd close the shim's, so the process
						// reads EOF after the data. (Closing the FIFO
						// here, through CloseStdin, raced the copy and
						// could drop the last bytes.)
						if w := c.attachs.stdin(); w != nil {
							w.Close()
						}
					}
					return
				}
			}
		}()
	}
	return detach, nil
}

// Resize resizes the terminal of the container's main process.
func (e *Engine) Resize(ctx context.Context, ref string, width, height uint32) error {
	c, err := e.resolve(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	tty, active, id, exits := c.rec.Config.Tty, isActive(c.rec.State), c.rec.ID, c.exits
	c.mu.Unlock()
	if !tty {
		return fmt.Errorf("container %s has no terminal: nothing to resize: %w", ref, errdefs.ErrFailedPrecondition)
	}
	if !active {
		return fmt.Errorf("container %s is not running: %w", ref, errdefs.ErrFailedPrecondition)
	}
	return stoppedMeanwhile(c, ref, exits, e.client.ResizeTerminal(ctx, id, id, width, height))
}

// Logs calls fn for each log entry of the container, oldest first.
func (e *Engine) Logs(ctx context.Context, ref string, opts LogsOptions, fn func(jsonlog.Entry) error) error {
	c, err := e.resolve(ref)
	if err != nil {
		return err
	}
	if !opts.Until.IsZero() {
		until, inner := opts.Until, fn
		fn = func(en jsonlog.Entry) error {
			if en.Time.After(until) {
				return nil
			}
			return inner(en)
		}
		if opts.Follow {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, until)
			defer cancel()
		}
	}
	c.mu.Lock()
	path := c.rec.LogPath
	var attrs map[string]string
	if opts.Details {
		attrs = LogAttrs(&c.rec.Config)
	}
	c.mu.Unlock()
	if opts.Details {
		// Each entry carries the attributes, empty ones too: docker
		// shows " line" then.
		if attrs == nil {
			attrs = map[string]string{}
		}
		inner := fn
		fn = func(en jsonlog.Entry) error {
			en.Attrs = attrs
			return inner(en)
		}
	}
	stopped := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		s := c.rec.State
		return c.removed || s == StateCreated || s == StateExited || s == StateDead
	}
	ro := jsonlog.ReadOptions{Tail: opts.Tail, Since: opts.Since}
	if !opts.Follow || stopped() {
		return jsonlog.Read(ctx, path, ro, fn)
	}
	// Follow until the container stops, then catch up with what was
	// written before the stop (its output is drained before the exit is
	// recorded) without repeating what was seen.
	callStart := time.Now()
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var watch sync.WaitGroup
	watch.Go(func() {
		e.waitChange(fctx, c, stopped, nil)
		cancel()
	})
	var last time.Time
	seenAtLast := 0
	track := func(en jsonlog.Entry) error {
		if en.Time.Equal(last) {
			seenAtLast++
		} else {
			last, seenAtLast = en.Time, 1
		}
		return fn(en)
	}
	ro.Follow = true
	ro.Notify = c.logw.Notify
	err = jsonlog.Read(fctx, path, ro, track)
	cancel()
	watch.Wait()
	if err != nil || ctx.Err() != nil {
		return err
	}
	skip := seenAtLast
	if last.IsZero() {
		// Nothing was seen: with Tail 0 only what came after the call is
		// new; otherwise the log had nothing yet.
		last, skip = opts.Since, 0
		if opts.Tail == 0 && callStart.After(last) {
			last = callStart
		}
	}
	return jsonlog.Read(ctx, path, jsonlog.ReadOptions{Tail: jsonlog.TailAll, Since: last}, func(en jsonlog.Entry) error {
		if en.Time.Equal(last) && skip > 0 {
			skip--
			return nil
		}
		if en.Time.Before(last) {
			return nil
		}
		return fn(en)
	})
}
