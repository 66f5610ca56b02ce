package backend

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

// TestEventsDropsStalledSubscriber: a subscriber that stops taking events
// is dropped once its queue is full, so the queue stops growing; when it
// takes events again it gets those queued before the drop and then
// ErrSubscriberBehind.
func TestEventsDropsStalledSubscriber(t *testing.T) {
	e := &Engine{}
	t0 := time.Unix(1700000000, 0)
	e.events.emit(Event{Type: "before", Time: t0})
	first := make(chan struct{})
	release := make(chan struct{})
	got := 0
	res := make(chan error, 1)
	go func() {
		// Replaying the first event stalls fn with the subscription
		// already registered.
		res <- e.Events(context.Background(), t0, nil, func(Event) error {
			got++
			if got == 1 {
				close(first)
				<-release // stalls, as a client that never reads
			}
			return nil
		})
	}()
	<-first
	for i := range 3 * subscriberQueueSize {
		e.events.emit(Event{Type: "flood", Attributes: map[string]string{"n": strconv.Itoa(i)}})
	}
	e.events.mu.Lock()
	subs := len(e.events.subs)
	e.events.mu.Unlock()
	if subs != 0 {
		t.Errorf("%d subscribers after the flood, want the stalled one dropped", subs)
	}
	close(release)
	select {
	case err := <-res:
		if !errors.Is(err, ErrSubscriberBehind) || !errdefs.IsResourceExhausted(err) {
			t.Fatalf("Events = %v, want ErrSubscriberBehind", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Events did not return after its subscriber was dropped")
	}
	if want := 1 + subscriberQueueSize; got != want {
		t.Errorf("the dropped subscriber got %d events, want the replayed one and its full queue: %d", got, want)
	}
}
