package backend

import (
	"context"
	"sync"
	"time"
)

// eventRingSize is how many past events Events can replay.
const eventRingSize = 1024

// eventLog keeps the last eventRingSize events and fans new ones out to
// subscribers. Emitting never blocks: each subscriber has its own unbounded
// queue that its Events call drains.
type eventLog struct {
	mu     sync.Mutex
	ring   []Event // oldest first once full: ring[next:] then ring[:next]
	next   int
	subs   map[*subscriber]struct{}
	closed bool
}

type subscriber struct {
	mu    sync.Mutex
	queue []Event
	wake  chan struct{} // buffered(1)
	done  chan struct{} // closed when the log closes
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
		s.queue = append(s.queue, ev)
		s.mu.Unlock()
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

func (s *subscriber) take() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queue
	s.queue = nil
	return q
}

// Events calls fn with the buffered events at or after since (the last 1024
// events are kept; the zero time replays none) and then with every new
// event, until ctx is done or the engine closes (it returns nil then) or fn
// returns an error (returned as is). filter, if not nil, selects the events
// fn sees. fn runs on the caller's goroutine; a slow fn delays only itself.
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
			return deliver(s.take())
		case <-s.wake:
			if err := deliver(s.take()); err != nil {
				return err
			}
		}
	}
}
