package serving

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestWait(t *testing.T) {
	for _, tc := range []struct {
		name    string
		b       Backoff
		answers int // the ask that answers, 0: never
		want    error
		asks    int
	}{
		{"answers at once", Backoff{Min: time.Hour}, 1, nil, 1},
		{"answers on the third ask", Backoff{Min: time.Microsecond, Max: time.Millisecond}, 3, nil, 3},
		{"delay: no ask before the first pause", Backoff{Min: time.Microsecond, Delay: true}, 1, nil, 1},
		{"never answers", Backoff{Min: time.Microsecond, Max: time.Microsecond}, 0, context.DeadlineExceeded, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			asks := 0
			err := Wait(ctx, tc.b, func(context.Context) bool {
				asks++
				return asks == tc.answers
			})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Wait: %v, want %v", err, tc.want)
			}
			if tc.asks >= 0 && asks != tc.asks {
				t.Fatalf("asked %d times, want %d", asks, tc.asks)
			}
		})
	}
}

// TestWaitDelayHonoursCtx: with Delay, an ended ctx is noticed before the
// first question.
func TestWaitDelayHonoursCtx(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Wait(ctx, Backoff{Min: time.Hour, Delay: true}, func(context.Context) bool {
		t.Fatal("asked after ctx ended")
		return true
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait: %v, want context.Canceled", err)
	}
}
