// Package attach owns the copy goroutines between one container process's
// stdio pipes and the engine's streams. IO implements containerd's cio.IO, so
// it can be returned from a cio.Creator or cio.Attach.
//
// The three lifecycle calls mean different things, as in containerd's
// pkg/cio:
//   - Cancel stops feeding stdin. Output keeps flowing.
//   - Wait blocks until stdout and stderr reach EOF, which happens once the
//     process and every other holder of the write ends (the shim) are gone.
//   - Close closes every pipe; the copies then end at once.
//
// Output is always drained, even with a nil or failing stream, so a process
// never blocks on a full pipe because nobody reads it.
//
// Concurrency: all methods are safe for concurrent use and may be called more
// than once. The stdout and stderr copies are owned by the IO and waited for by
// Wait. The stdin copy is owned by the IO too, but a copy blocked inside
// Streams.Stdin.Read (for example on os.Stdin) cannot be interrupted: after
// Cancel, CloseStdin or Close it ends as soon as that Read returns, and the
// data of that read is dropped.
//
// Zero value: not usable; build an IO with New.
package attach

import (
	"errors"
	"io"
	"sync"

	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/log"
	"github.com/hashicorp/go-multierror"
)

// copyBufSize matches containerd's pkg/cio copy buffers.
const copyBufSize = 32 << 10

var _ cio.IO = (*IO)(nil)

// Streams are the engine-side consumers and producers of a process's stdio.
// Any may be nil: a nil Stdin leaves the stdin pipe unfed (open until
// CloseStdin or Close), a nil Stdout or Stderr drains that pipe.
type Streams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// IO copies between a process's pipes and Streams. See the package doc for
// the meaning of Cancel, Wait and Close.
type IO struct {
	cfg cio.Config

	stdin          *onceCloser
	stdout, stderr *onceCloser

	// canceled is closed by Cancel, CloseStdin and Close: no more stdin
	// data is written after that.
	canceled   chan struct{}
	cancelOnce sync.Once

	outputs sync.WaitGroup // stdout and stderr copies
	// stdinDone is closed when the stdin copy has returned (or at once
	// when there is none).
	stdinDone chan struct{}
}

// New starts the copy goroutines: Streams.Stdin to the stdin pipe (closing the
// pipe when Streams.Stdin reaches EOF, so the process sees EOF), the stdout
// pipe to Streams.Stdout and the stderr pipe to Streams.Stderr. Any pipe may
// be nil, and cfg is only reported back by Config. Each output pipe is closed
// by its copy when it reaches EOF. A failing output stream is logged once and
// the rest of that output is discarded, never left unread.
func New(cfg cio.Config, stdin io.WriteCloser, stdout, stderr io.ReadCloser, streams Streams) *IO {
	c := &IO{
		cfg:       cfg,
		canceled:  make(chan struct{}),
		stdinDone: make(chan struct{}),
	}
	if stdin != nil {
		c.stdin = &onceCloser{c: stdin}
	}
	if stdout != nil {
		c.stdout = &onceCloser{c: stdout}
		c.outputs.Go(func() { copyOutput("stdout", streams.Stdout, stdout, c.stdout) })
	}
	if stderr != nil {
		c.stderr = &onceCloser{c: stderr}
		c.outputs.Go(func() { copyOutput("stderr", streams.Stderr, stderr, c.stderr) })
	}
	if stdin != nil && streams.Stdin != nil {
		go func() {
			defer close(c.stdinDone)
			c.copyStdin(stdin, streams.Stdin)
		}()
	} else {
		close(c.stdinDone)
	}
	return c
}

// copyStdin feeds dst from src until src ends or the IO is canceled. Only a
// clean EOF from src closes the pipe; a cancel leaves that to CloseStdin or
// Close.
func (c *IO) copyStdin(dst io.Writer, src io.Reader) {
	buf := make([]byte, copyBufSize)
	for {
		n, rerr := src.Read(buf)
		select {
		case <-c.canceled:
			return
		default:
		}
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				logger().WithError(err).Debug("attach: stdin pipe closed, stop feeding it")
				return
			}
		}
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) {
				logger().WithError(rerr).Warn("attach: reading stdin stream failed; closing the process's stdin")
			}
			if err := c.stdin.Close(); err != nil {
				logger().WithError(err).Debug("attach: close stdin pipe")
			}
			return
		}
	}
}

// copyOutput copies src to dst until src ends. After dst fails it keeps
// draining src so the writer never blocks.
func copyOutput(name string, dst io.Writer, src io.Reader, closer io.Closer) {
	if dst == nil {
		dst = io.Discard
	}
	buf := make([]byte, copyBufSize)
	for {
		n, rerr := src.Read(buf)
		if n > 0 && dst != io.Discard {
			if _, err := dst.Write(buf[:n]); err != nil {
				logger().WithError(err).WithField("stream", name).Warn("attach: output stream failed; discarding the rest of this output")
				dst = io.Discard
			}
		}
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) {
				logger().WithError(rerr).WithField("stream", name).Debug("attach: output pipe read ended")
			}
			break
		}
	}
	if err := closer.Close(); err != nil {
		logger().WithError(err).WithField("stream", name).Debug("attach: close output pipe")
	}
}

// Config returns the cio.Config given to New.
func (c *IO) Config() cio.Config {
	return c.cfg
}

// Cancel stops feeding stdin: nothing more is written to the stdin pipe and
// the stdin copy returns (at its next read of Streams.Stdin if it is blocked
// there). The stdin pipe stays open, so the process does not see EOF; use
// CloseStdin or Close for that. Output pipes are not touched.
func (c *IO) Cancel() {
	c.cancelOnce.Do(func() { close(c.canceled) })
}

// Wait blocks until the stdout and stderr copies have finished: at EOF, after
// the process and all other holders of the write ends have exited, or after
// Close. If the process was never started, the shim never opens the FIFOs and
// only Close ends the copies; call Close before Wait in that case.
func (c *IO) Wait() {
	c.outputs.Wait()
}

// CloseStdin closes the stdin pipe now, so the process sees EOF, and stops the
// stdin copy. It is a no-op without a stdin pipe and safe to call twice.
func (c *IO) CloseStdin() error {
	c.Cancel()
	if c.stdin == nil {
		return nil
	}
	return c.stdin.Close()
}

// Close cancels stdin and closes every pipe, which ends the output copies;
// after Close and Wait no goroutine of this IO is left, except a stdin copy
// blocked in Streams.Stdin.Read, which ends when that Read returns.
// Buffered output the process wrote but the engine had not read yet is lost,
// so call Wait first when the process has exited.
func (c *IO) Close() error {
	c.Cancel()
	var errs *multierror.Error
	for _, p := range []*onceCloser{c.stdin, c.stdout, c.stderr} {
		if p == nil {
			continue
		}
		if err := p.Close(); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	return errs.ErrorOrNil()
}

// onceCloser closes c once: the fifo package does not allow concurrent
// closes, and both a copy and Close may close the same pipe.
type onceCloser struct {
	c    io.Closer
	once sync.Once
	err  error
}

func (o *onceCloser) Close() error {
	o.once.Do(func() { o.err = o.c.Close() })
	return o.err
}

// logger is this package's component logger; IO has no request context.
func logger() *log.Entry {
	return log.L.WithField("component", "io/attach")
}
