// Package serving waits until a containerd answers again: after it went
// away, while it starts, or while the connection to it recovers. It is the
// one such wait of libcontainerd and its supervisor; each caller says what
// counts as an answer.
//
// Wait runs on the caller's goroutine and starts none.
package serving

import (
	"context"
	"time"
)

// Backoff paces the questions: the first pause is Min, each next one twice
// the last, at most Max. With Delay the first question waits a pause too.
type Backoff struct {
	Min, Max time.Duration
	Delay    bool
}

// Wait asks until ask reports an answer, and returns nil then, or ctx's
// error when ctx ends first. ask gets ctx and may block; what it learned it
// keeps itself.
func Wait(ctx context.Context, b Backoff, ask func(ctx context.Context) (answered bool)) error {
	pause := b.Min
	if !b.Delay && ask(ctx) {
		return nil
	}
	t := time.NewTimer(pause)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if ask(ctx) {
			return nil
		}
		pause = min(pause*2, max(b.Max, b.Min))
		t.Reset(pause)
	}
}
