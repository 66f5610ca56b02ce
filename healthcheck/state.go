package healthcheck

import (
	"fmt"
	"sync"
	"time"
)

// Health statuses, as Docker reports them.
const (
	StatusStarting  = "starting"
	StatusHealthy   = "healthy"
	StatusUnhealthy = "unhealthy"
)

// Default log limits, as Docker.
const (
	DefaultLogEntries  = 5
	DefaultOutputBytes = 4096
)

// Result is the outcome of one probe. ExitCode is -1 when the probe timed out
// or could not be run; Output then says why.
type Result struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	ExitCode int       `json:"exit_code"`
	Output   string    `json:"output"`
}

// State is a container's health. It is JSON-serialisable so the caller can
// persist it and hand it back to Scheduler.Add after an engine restart. The
// zero State means starting.
type State struct {
	Status        string   `json:"status"`
	FailingStreak int      `json:"failing_streak"`
	Log           []Result `json:"log,omitempty"`
}

// Clone returns a deep copy of s.
func (s State) Clone() State {
	if s.Log != nil {
		s.Log = append([]Result(nil), s.Log...)
	}
	return s
}

// normalize makes a restored state usable: unknown statuses become starting
// and the log is trimmed to maxEntries.
func (s State) normalize(maxEntries int) State {
	s = s.Clone()
	switch s.Status {
	case StatusStarting, StatusHealthy, StatusUnhealthy:
	default:
		s.Status = StatusStarting
	}
	if s.FailingStreak < 0 {
		s.FailingStreak = 0
	}
	if len(s.Log) > maxEntries {
		s.Log = s.Log[len(s.Log)-maxEntries:]
	}
	return s
}

// apply records r in s and updates the status with Docker's rules: a success
// makes the container healthy; a failure counts unless the container is
// still starting within its start period (measured from startedAt); Retries
// counted failures in a row make it unhealthy. cfg must have its defaults
// set. It reports whether the status changed.
func (s *State) apply(r Result, cfg Config, startedAt time.Time, maxEntries int) bool {
	old := s.Status
	if old == "" {
		s.Status = StatusStarting
		old = StatusStarting
	}
	s.Log = append(s.Log, r)
	if n := len(s.Log) - maxEntries; n > 0 {
		s.Log = append(s.Log[:0:0], s.Log[n:]...)
	}
	if r.ExitCode == 0 {
		s.FailingStreak = 0
		s.Status = StatusHealthy
		return old != s.Status
	}
	if s.Status == StatusStarting && r.Start.Sub(startedAt) < cfg.StartPeriod {
		return false
	}
	s.FailingStreak++
	if s.FailingStreak >= cfg.Retries {
		s.Status = StatusUnhealthy
	}
	return old != s.Status
}

// cappedBuffer keeps the first limit bytes written to it and counts the rest.
// Writes never block beyond a short mutex and never fail, so a chatty probe
// is not stalled by its output.
type cappedBuffer struct {
	mu      sync.Mutex
	limit   int
	buf     []byte
	omitted int64
}

func newCappedBuffer(limit int) *cappedBuffer {
	return &cappedBuffer{limit: limit}
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	keep := min(max(b.limit-len(b.buf), 0), len(p))
	b.buf = append(b.buf, p[:keep]...)
	b.omitted += int64(len(p) - keep)
	return len(p), nil
}

var _ LimitedWriter = (*cappedBuffer)(nil)

// Limit returns how many bytes the buffer keeps.
func (b *cappedBuffer) Limit() int { return b.limit }

// Omitted counts n bytes that were dropped before they reached the buffer.
func (b *cappedBuffer) Omitted(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.omitted += n
}

// String returns the kept output, followed by a marker if bytes were omitted.
func (b *cappedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.omitted == 0 {
		return string(b.buf)
	}
	return string(b.buf) + fmt.Sprintf("\n[output truncated: %d bytes omitted]", b.omitted)
}
