package cli

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/containerd/console"
	"github.com/containerd/log"
)

// terminal is the user's terminal when the CLI's stdin is one.
type terminal struct {
	in  console.Console
	out console.Console // where the size is read from; may equal in
}

// openTerminal returns the terminal behind stdin (and stdout for its size),
// or nil when stdin is not a terminal.
func openTerminal(stdin io.Reader, stdout io.Writer) *terminal {
	f, ok := stdin.(*os.File)
	if !ok {
		return nil
	}
	in, err := console.ConsoleFromFile(f)
	if err != nil {
		return nil
	}
	t := &terminal{in: in, out: in}
	if o, ok := stdout.(*os.File); ok {
		if out, err := console.ConsoleFromFile(o); err == nil {
			t.out = out
		}
	}
	return t
}

// makeRaw puts the terminal in raw mode so that every key (Ctrl-C
// included) reaches the container; restore puts back the mode it had
// when opened. Output processing stays on, as docker and nerdctl keep it.
func (t *terminal) makeRaw() (restore func(), err error) {
	if err := t.in.SetRaw(); err != nil {
		return nil, err
	}
	return func() { _ = t.in.Reset() }, nil
}

// size returns the terminal's width and height.
func (t *terminal) size() (uint32, uint32, bool) {
	ws, err := t.out.Size()
	if err != nil || ws.Width == 0 || ws.Height == 0 {
		return 0, 0, false
	}
	return uint32(ws.Width), uint32(ws.Height), true
}

// watchResize calls resize with the terminal's size on every SIGWINCH
// until ctx ends (the initial size travels with the request); the returned
// func stops it and waits.
func (t *terminal) watchResize(ctx context.Context, resize func(ctx context.Context, w, h uint32) error) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	done := make(chan struct{})
	apply := func() {
		if w, h, ok := t.size(); ok {
			if err := resize(ctx, w, h); err != nil && ctx.Err() == nil {
				log.G(ctx).WithError(err).Debug("resize terminal")
			}
		}
	}
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-winch:
				apply()
			}
		}
	}()
	return func() {
		signal.Stop(winch)
		cancel()
		<-done
	}
}

// writerIsTerminal reports whether w is a terminal (a redrawn table makes
// sense).
func writerIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f)
}
