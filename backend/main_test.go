package backend

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine outlives them: every
// goroutine of an Engine (restart timers, exit handlers, health actions,
// event subscribers) must be stopped and waited for by Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
