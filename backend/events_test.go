package backend

import (
	"context"
	"errors"
	"strconv"
	"sync"
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

func TestEventsReplayAndFilter(t *testing.T) {
	env := newFakeEnv(t)
	ctx := context.Background()
	t0 := env.clock.Now()
	c := env.create(CreateOptions{})
	env.clock.Advance(time.Second)
	if err := env.e.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	env.expectStart(c.ID)
	var got []string
	var exiter sync.WaitGroup
	defer exiter.Wait()
	stop := errors.New("enough")
	err := env.e.Events(ctx, t0, func(ev Event) bool { return ev.ContainerID == c.ID }, func(ev Event) error {
		got = append(got, ev.Type)
		if ev.Type == "die" {
			return stop
		}
		if ev.Type == "start" {
			exiter.Go(func() { env.fc.exit(c.ID, 0) })
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("Events: %v", err)
	}
	want := []string{"create", "start", "die"}
	if len(got) != len(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("events %v, want %v", got, want)
		}
	}
	// Replay from later than the create skips it.
	var later []string
	lctx, cancel := context.WithCancel(ctx)
	env.e.Events(lctx, t0.Add(time.Second), nil, func(ev Event) error {
		later = append(later, ev.Type)
		if ev.Type == "die" {
			cancel()
		}
		return nil
	})
	cancel()
	if len(later) != 2 || later[0] != "start" {
		t.Errorf("replay since +1s: %v", later)
	}
}
