package libcontainerd

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/io/attach"
	"github.com/tendhq/tend/io/fifoset"
)

// ioCreator opens the process's FIFOs and hands them to the caller's stdio
// callback, or drains them when there is none. The IO it creates is a
// procIO: markStarted tells it the process runs and how to close its stdin.
func (c *client) ioCreator(set *fifoset.Set, cb StdioCallback) (create func() (cio.IO, error), markStarted func(containerd.Process)) {
	var pio *procIO // the IO of the last attempt
	create = func() (cio.IO, error) {
		pio = &procIO{c: c}
		// The FIFOs live as long as the process, not as long as the call.
		pipes, err := set.Open(c.ctx)
		if err != nil {
			return nil, fmt.Errorf("open stdio FIFOs in %s: %w", set.Dir, err)
		}
		if pipes.Stdin != nil {
			pio.stdin = &stdinPipe{WriteCloser: pipes.Stdin, pio: pio}
			pipes.Stdin = pio.stdin
		}
		if cb == nil {
			pio.IO = attach.New(set.Config(), pipes.Stdin, pipes.Stdout, pipes.Stderr, attach.Streams{})
			return pio, nil
		}
		sio, err := cb(set.Config(), Pipes{Stdin: pipes.Stdin, Stdout: pipes.Stdout, Stderr: pipes.Stderr})
		if err != nil {
			pipes.Close()
			return nil, fmt.Errorf("attach stdio: %w", err)
		}
		pio.IO = sio
		return pio, nil
	}
	return create, func(p containerd.Process) {
		if pio != nil {
			pio.markStarted(p)
		}
	}
}

// procIO bounds what containerd's client waits for, and passes the end of
// the engine's stdin on to the process.
//
// The client calls Cancel then Wait before it deletes a process, and inside
// a Start that failed. A process that never started sends no output: Wait
// closes the pipes at once (the shim may keep its ends open, and Wait would
// never return). A started one gets ioDrainTimeout to finish its output,
// since a daemonised grandchild may hold the pipe open forever.
//
// The shim does not pass EOF on its stdin FIFO to the process: when the
// engine closes its stdin end, procIO asks containerd to close the process's
// stdin (CloseIO), so `echo x | engine exec -i c cat` ends.
type procIO struct {
	cio.IO
	c *client

	stdin    *stdinPipe // nil without stdin
	mu       sync.Mutex
	started  atomic.Bool
	ended    atomic.Bool        // the process had stopped before its IO was opened: no output will come
	proc     containerd.Process // set once started
	stdinEOF bool               // the engine closed stdin before the start
	closing  bool               // Close was called: no CloseIO needed
	holding  bool               // a Start call is in flight: see hold
	held     bool               // Cancel or Close was called while holding
}

func (p *procIO) markStarted(proc containerd.Process) {
	p.mu.Lock()
	p.proc = proc
	eof := p.stdinEOF
	p.mu.Unlock()
	p.started.Store(true)
	if eof {
		p.c.closeStdinAsync(proc)
	}
}

// stdinClosed is called when the engine closed its end of the stdin FIFO.
func (p *procIO) stdinClosed() {
	p.mu.Lock()
	proc, closing := p.proc, p.closing
	if proc == nil {
		p.stdinEOF = true
	}
	p.mu.Unlock()
	if proc != nil && !closing {
		p.c.closeStdinAsync(proc)
	}
}

// hold makes Cancel and Close wait for the outcome of a Start call.
// containerd's client cancels and closes a task's IO when the call fails,
// but a Start that containerd's death broke may have started the task
// (startedAnyway), and its output must still be read.
func (p *procIO) hold() {
	p.mu.Lock()
	p.holding = true
	p.mu.Unlock()
}

// release ends hold. When the start failed, a Cancel or Close asked for
// meanwhile is done now.
func (p *procIO) release(failed bool) {
	p.mu.Lock()
	held := p.held
	p.holding, p.held = false, false
	p.mu.Unlock()
	if held && failed {
		p.Close()
	}
}

func (p *procIO) Cancel() {
	p.mu.Lock()
	if p.holding {
		p.held = true
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.IO.Cancel()
}

func (p *procIO) Close() error {
	p.mu.Lock()
	if p.holding {
		p.held = true
		p.mu.Unlock()
		return nil
	}
	p.closing = true
	p.mu.Unlock()
	return p.IO.Close()
}

// stdinPipe tells its procIO when the engine closes stdin.
type stdinPipe struct {
	io.WriteCloser
	pio  *procIO
	once sync.Once
}

func (s *stdinPipe) Close() error {
	err := s.WriteCloser.Close()
	s.once.Do(s.pio.stdinClosed)
	return err
}

// closeQuietly closes the engine's end without the asynchronous CloseIO:
// the caller does it.
func (s *stdinPipe) closeQuietly() {
	s.once.Do(func() {})
	s.WriteCloser.Close()
}

// closeStdinAsync closes a process's stdin through containerd without
// blocking the caller (a copy goroutine); the goroutine is the client's.
func (c *client) closeStdinAsync(proc containerd.Process) {
	c.spawn(c.ctx, func() {
		ctx, cancel := context.WithTimeout(c.ctx, cleanupTimeout)
		defer cancel()
		if err := proc.CloseIO(ctx, containerd.WithStdinCloser); err != nil && !errdefs.IsNotFound(err) {
			c.log.WithError(err).WithField("process", proc.ID()).Debug("close stdin after EOF")
		}
	})
}

func (p *procIO) Wait() {
	if !p.started.Load() || p.ended.Load() {
		p.IO.Close()
		p.IO.Wait()
		return
	}
	done := make(chan struct{})
	go func() {
		p.IO.Wait()
		close(done)
	}()
	t := time.NewTimer(ioDrainTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		p.IO.Close()
		<-done
	}
}

// drainIO waits, for a bounded time (procIO), until a stopped process's
// output reached its end.
//
// Callers know the process ran (it exited, or its task is stopped): an exit
// can be handled before the Start call that began the process has returned,
// and the output of such a fast process must not be dropped as if it had
// never started.
func drainIO(pio cio.IO) {
	if pio == nil {
		return
	}
	if p, ok := pio.(*procIO); ok {
		p.started.Store(true)
	}
	pio.Cancel()
	pio.Wait()
}
