// Package crashtest lets the project's own tests close a backend Engine as a
// SIGKILL of the engine process would, to test crash recovery. It is
// internal so that embedders cannot reach it: an engine they run always
// writes its records.
//
// Abandon marks an engine; the engine's Close takes the mark (Take). Both
// are safe for concurrent use. The zero state marks nothing.
package crashtest

import "sync"

var (
	mu     sync.Mutex
	marked = map[any]bool{}
)

// Abandon marks engine (a *backend.Engine) so that its next Close behaves
// like a SIGKILL of the engine process: containers are neither stopped nor
// waited for, no record is written from the moment Close is called, and
// pending restarts are dropped as they are (they happen after the next
// New). Goroutines and connections are still released.
func Abandon(engine any) {
	mu.Lock()
	defer mu.Unlock()
	marked[engine] = true
}

// Take reports whether engine was marked by Abandon, and clears the mark.
func Take(engine any) bool {
	mu.Lock()
	defer mu.Unlock()
	ok := marked[engine]
	delete(marked, engine)
	return ok
}
