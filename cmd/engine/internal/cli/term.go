package cli

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/containerd/log"
	"golang.org/x/sys/unix"
)

// terminal is the user's terminal when the CLI's stdin is one.
type terminal struct {
	in  *os.File
	out *os.File // where the size is read from; may equal in
}

// openTerminal returns the terminal behind stdin (and stdout for its size),
// or nil when stdin is not a terminal.
func openTerminal(stdin io.Reader, stdout io.Writer) *terminal {
	f, ok := stdin.(*os.File)
	if !ok || !isTerminal(int(f.Fd())) {
		return nil
	}
	t := &terminal{in: f, out: f}
	if o, ok := stdout.(*os.File); ok && isTerminal(int(o.Fd())) {
		t.out = o
	}
	return t
}

func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// makeRaw puts the terminal in raw mode, as cfmakeraw(3), so that every key
// (Ctrl-C included) reaches the container; restore undoes it.
func (t *terminal) makeRaw() (restore func(), err error) {
	fd := int(t.in.Fd())
	tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	old := *tio
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag &^= unix.CSIZE | unix.PARENB
	tio.Cflag |= unix.CS8
	tio.Cc[unix.VMIN] = 1
	tio.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, tio); err != nil {
		return nil, err
	}
	return func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, &old) }, nil
}

// size returns the terminal's width and height.
func (t *terminal) size() (uint32, uint32, bool) {
	ws, err := unix.IoctlGetWinsize(int(t.out.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 || ws.Row == 0 {
		return 0, 0, false
	}
	return uint32(ws.Col), uint32(ws.Row), true
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
