package backend

import (
	"context"
	"sync"
	"testing"
	"time"
)

// eventRecorder collects engine events from Events.
// eventRecorder records every event of an engine, from its start.
type eventRecorder struct {
	mu  sync.Mutex
	evs []Event
	wg  sync.WaitGroup
}

func recordEvents(t *testing.T, e *Engine) *eventRecorder {
	r := &eventRecorder{}
	ctx, cancel := context.WithCancel(context.Background())
	r.wg.Go(func() {
		e.Events(ctx, time.Unix(0, 0), nil, func(ev Event) error {
			r.mu.Lock()
			r.evs = append(r.evs, ev)
			r.mu.Unlock()
			return nil
		})
	})
	t.Cleanup(func() { cancel(); r.wg.Wait() })
	return r
}

// all returns every event of the engine, which must be closed: Events
// delivers what is queued and returns, and all waits for that.
func (r *eventRecorder) all() []Event {
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.evs...)
}

// waitBriefly yields to the probe goroutines between fake clock steps.
func waitBriefly() {
	t := time.NewTimer(time.Millisecond)
	<-t.C
}
