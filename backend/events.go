package backend

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/containerd/errdefs"
)

// eventRingSize is how many past events Events can replay.
const eventRingSize = 1024

// subscriberQueueSize bounds the events waiting for one subscriber. A
// subscriber that lets more pile up is dropped, as moby's pkg/pubsub drops
// a subscriber that does not take its events: one stalled reader must not
// grow the engine's memory without limit.
const subscriberQueueSize = 4096

// ErrSubscriberBehind is returned by Events to a subscriber that fell more
// than 4096 events behind and was dropped. The events up to the drop were
// delivered; subscribe again with since set to catch up from the ring.
var ErrSubscriberBehind = fmt.Errorf("events subscriber dropped: more than %d events waited for it: take events faster, and subscribe again with a since time to catch up: %w", subscriberQueueSize, errdefs.ErrResourceExhausted)

// eventLog keeps the last eventRingSize events and fans new ones out to
// subscribers. Emitting never blocks: each subscriber has its own queue,
// bounded by subscriberQueueSize, that its Events call drains.
type eventLog struct {
	mu     sync.Mutex
	ring   []Event // oldest first once full: ring[next:] then ring[:next]
	next   int
	subs   map[*subscriber]struct{}
	closed bool
}

type subscriber struct {
	mu     sync.Mutex
	queue  []Event
	behind bool          // (mu) dropped for letting its queue fill
	wake   chan struct{} // buffered(1)
	done   chan struct{} // closed when the log closes or drops it
}

func (l *eventLog) emit(ev Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ring) < eventRingSize {
		l.ring = append(l.ring, ev)
	} else {
		l.ring[l.next] = ev
		l.next = (l.next + 1) % eventRingSize
	}
	for s := range l.subs {
		s.mu.Lock()
		full := len(s.queue) >= subscriberQueueSize
		if full {
			s.behind = true
		} else {
			s.queue = append(s.queue, ev)
		}
		s.mu.Unlock()
		if full {
			delete(l.subs, s)
			close(s.done)
			continue
		}
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// subscribe registers a subscriber and returns the buffered events at or
// after since (none for the zero time), atomically with the registration so
// no event is missed or seen twice.
func (l *eventLog) subscribe(since time.Time) (*subscriber, []Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &subscriber{wake: make(chan struct{}, 1), done: make(chan struct{})}
	if l.closed {
		close(s.done)
		return s, nil
	}
	if l.subs == nil {
		l.subs = make(map[*subscriber]struct{})
	}
	l.subs[s] = struct{}{}
	var replay []Event
	if !since.IsZero() {
		for _, ev := range append(append([]Event(nil), l.ring[l.next:]...), l.ring[:l.next]...) {
			if !ev.Time.Before(since) {
				replay = append(replay, ev)
			}
		}
	}
	return s, replay
}

func (l *eventLog) unsubscribe(s *subscriber) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.subs, s)
}

// close ends every subscription.
func (l *eventLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	for s := range l.subs {
		close(s.done)
	}
	l.subs = nil
}

// take returns the queued events, and ErrSubscriberBehind once the
// subscriber was dropped.
func (s *subscriber) take() ([]Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queue
	s.queue = nil
	if s.behind {
		return q, ErrSubscriberBehind
	}
	return q, nil
}

// Events calls fn with the buffered events at or after since (the last 1024
// events are kept; the zero time replays none) and then with every new
// event, until ctx is done or the engine closes (it returns nil then) or fn
// returns an error (returned as is). filter, if not nil, selects the events
// fn sees. fn runs on the caller's goroutine; a slow fn delays only itself,
// until more than 4096 events wait for it: it is then dropped, gets the
// events queued so far, and Events returns ErrSubscriberBehind.
func (e *Engine) Events(ctx context.Context, since time.Time, filter func(Event) bool, fn func(Event) error) error {
	s, replay := e.events.subscribe(since)
	defer e.events.unsubscribe(s)
	deliver := func(evs []Event) error {
		for _, ev := range evs {
			if filter != nil && !filter(ev) {
				continue
			}
			if err := fn(ev); err != nil {
				return err
			}
		}
		return nil
	}
	if err := deliver(replay); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.done:
			evs, behind := s.take()
			if err := deliver(evs); err != nil {
				return err
			}
			return behind
		case <-s.wake:
			evs, _ := s.take() // a drop also closes done
			if err := deliver(evs); err != nil {
				return err
			}
		}
	}
}
