// Package signals gives the engine's commands (the CLI and the daemon)
// docker's handling of SIGINT and SIGTERM: the first ends a context, so
// that the command stops gracefully; a second one ends the process at once.
package signals

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// Context returns a context that the first SIGINT or SIGTERM ends
// (context.Cause says which signal). After that, a second one makes the
// process exit at once with 128 plus the signal's number, after saying so
// on stderr. stop releases the signals and ends the watcher goroutine; the
// caller must call it before it returns.
func Context(parent context.Context, stderr io.Writer) (ctx context.Context, stop func()) {
	ctx, stopNotify := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
			return
		}
		again := make(chan os.Signal, 1)
		signal.Notify(again, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(again)
		stopNotify()
		select {
		case s := <-again:
			fmt.Fprintf(stderr, "received %v again: forcing exit\n", s)
			code := 130
			if sig, ok := s.(syscall.Signal); ok {
				code = 128 + int(sig)
			}
			os.Exit(code)
		case <-done:
		}
	}()
	var once sync.Once
	// The watcher leaves before the signals are released.
	return ctx, func() { once.Do(func() { close(done); stopNotify() }) }
}
