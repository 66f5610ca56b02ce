package dockerapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/cmd/internal/api"
)

// waitContainer answers POST /containers/{id}/wait as dockerd does: the
// 200 header is sent as soon as the wait is registered, so a client can
// wait for next-exit before it starts the container; the body follows when
// the condition holds.
func (s *Server) waitContainer(w http.ResponseWriter, r *http.Request) error {
	cond := container.WaitCondition(r.URL.Query().Get("condition"))
	switch cond {
	case "", container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return fmt.Errorf("invalid condition %s: want not-running, next-exit or removed: %w", api.Echo(string(cond)), errdefs.ErrInvalidArgument)
	}
	ctx := r.Context()
	c, err := s.engine.Inspect(ctx, r.PathValue("ref"))
	if err != nil {
		return err
	}
	// Exits are watched from now on: the engine replays its events from
	// this time, so an exit between here and the watch is not missed.
	exits := s.watchExits(ctx, c.ID, time.Now())
	defer exits.stop()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = http.NewResponseController(w).Flush()
	var code int
	switch cond {
	case container.WaitConditionNextExit:
		code, err = exits.next(ctx)
	case container.WaitConditionRemoved:
		code, err = s.engine.Wait(ctx, c.ID, backend.WaitRemoved)
	default:
		code, err = s.engine.Wait(ctx, c.ID, backend.WaitNotRunning)
	}
	resp := container.WaitResponse{StatusCode: int64(code)}
	if errdefs.IsNotFound(err) {
		// Removed before the wait could see it: its last exit is known.
		if code, err = exits.latest(); err == nil {
			resp.StatusCode = int64(code)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		resp.Error = &container.WaitExitError{Message: err.Error()}
	}
	return writeBody(w, resp)
}

func writeBody(w http.ResponseWriter, v any) error {
	b, _ := jsonMarshal(v)
	_, _ = w.Write(b)
	return nil
}

// exitWatch collects a container's die events.
type exitWatch struct {
	cancel context.CancelFunc
	done   chan struct{}
	codes  chan int
	last   int
	seen   bool
}

// watchExits follows the die events of container id from since on; stop
// ends it.
func (s *Server) watchExits(ctx context.Context, id string, since time.Time) *exitWatch {
	ctx, cancel := context.WithCancel(ctx)
	x := &exitWatch{cancel: cancel, done: make(chan struct{}), codes: make(chan int, 64)}
	go func() {
		defer close(x.done)
		filter := func(e backend.Event) bool { return e.ContainerID == id && e.Type == "die" }
		_ = s.engine.Events(ctx, since, filter, func(e backend.Event) error {
			code, err := strconv.Atoi(e.Attributes["exitCode"])
			if err != nil {
				code = -1
			}
			select {
			case x.codes <- code:
			default: // nobody reads that many exits
			}
			return nil
		})
	}()
	return x
}

// next returns the exit code of the first die event.
func (x *exitWatch) next(ctx context.Context) (int, error) {
	select {
	case code := <-x.codes:
		x.last, x.seen = code, true
		return code, nil
	case <-ctx.Done():
		return -1, ctx.Err()
	}
}

// latest returns the last exit code seen so far.
func (x *exitWatch) latest() (int, error) {
	for {
		select {
		case code := <-x.codes:
			x.last, x.seen = code, true
		default:
			if !x.seen {
				return -1, fmt.Errorf("the container was removed before its exit was seen: %w", errdefs.ErrNotFound)
			}
			return x.last, nil
		}
	}
}

func (x *exitWatch) stop() {
	x.cancel()
	<-x.done
}
