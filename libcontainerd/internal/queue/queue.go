// Package queue runs functions serially per key, in the order they were
// appended, without blocking the caller.
//
// It is how libcontainerd hands task events to the Backend: events of one
// container run one after another, events of different containers run
// concurrently, and the goroutine that reads the containerd event stream never
// waits for a Backend. The zero value is ready to use; Close waits for every
// appended function to finish and rejects new ones.
package queue

import "sync"

// Queue runs functions serially per key.
type Queue struct {
	mu     sync.Mutex
	tails  map[string]chan struct{} // closed when the last appended function of a key has run
	wg     sync.WaitGroup
	closed bool
}

// Append schedules f to run after every function appended earlier with the
// same key. It reports false, and does not run f, once Close was called.
func (q *Queue) Append(key string, f func()) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	if q.tails == nil {
		q.tails = make(map[string]chan struct{})
	}
	prev := q.tails[key]
	done := make(chan struct{})
	q.tails[key] = done
	q.wg.Add(1)
	q.mu.Unlock()

	go func() {
		defer q.wg.Done()
		if prev != nil {
			<-prev
		}
		f()
		close(done)
		q.mu.Lock()
		if q.tails[key] == done {
			delete(q.tails, key)
		}
		q.mu.Unlock()
	}()
	return true
}

// Close rejects further functions and waits until every appended one has run.
func (q *Queue) Close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.wg.Wait()
}
