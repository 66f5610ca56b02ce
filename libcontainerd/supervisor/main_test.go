package supervisor

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/tendhq/tend/internal/pdeath"
)

// TestMain fails the package's tests when a goroutine outlives them: every
// goroutine has an owner that stops it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction(pdeath.ForkLoop))
}
