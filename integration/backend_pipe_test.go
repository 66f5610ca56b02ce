package integration

import (
	"io"
	"time"
)

func ioPipe() (*io.PipeReader, *io.PipeWriter) { return io.Pipe() }

// runtimeYield pauses a poll loop briefly without a sleep-based
// synchronisation: callers re-check their condition against a deadline.
func runtimeYield() {
	t := time.NewTimer(10 * time.Millisecond)
	<-t.C
}
