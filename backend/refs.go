package backend

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"strings"

	"github.com/containerd/errdefs"
)

// resolve finds a container by id, name or unique id prefix.
func (e *Engine) resolve(ref string) (*container, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		return nil, ErrClosed
	}
	return e.resolveLocked(ref)
}

// lookup is resolve that also finds containers after Close, for reading
// what an engine knew.
func (e *Engine) lookup(ref string) (*container, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.resolveLocked(ref)
}

// lockContainer resolves ref and takes the container's operation lock,
// c.op, which the caller releases. A container removed while the caller
// waited for the lock is errdefs.ErrNotFound.
func (e *Engine) lockContainer(ref string) (*container, error) {
	c, err := e.resolve(ref)
	if err != nil {
		return nil, err
	}
	c.op.Lock()
	c.mu.Lock()
	removed := c.removed
	c.mu.Unlock()
	if removed {
		c.op.Unlock()
		return nil, fmt.Errorf("No such container: %s: %w", ref, errdefs.ErrNotFound)
	}
	return c, nil
}

func (e *Engine) resolveLocked(ref string) (*container, error) {
	ref = strings.TrimPrefix(ref, "/")
	if ref == "" {
		return nil, fmt.Errorf("no container given: name a container by id, id prefix or name: %w", errdefs.ErrInvalidArgument)
	}
	if c, ok := e.ctrs[ref]; ok {
		return c, nil
	}
	if id, ok := e.names[ref]; ok {
		if c, ok := e.ctrs[id]; ok {
			return c, nil
		}
	}
	var found *container
	for id, c := range e.ctrs {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, fmt.Errorf("container reference %q matches several containers: give more of the id: %w", ref, errdefs.ErrInvalidArgument)
			}
			found = c
		}
	}
	if found == nil {
		return nil, fmt.Errorf("No such container: %s: %w", ref, errdefs.ErrNotFound)
	}
	return found, nil
}

func newID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("read random bytes: %v", err))
	}
	return hex.EncodeToString(b[:])
}

var (
	nameLeft  = []string{"brave", "calm", "eager", "fond", "keen", "lucid", "merry", "noble", "quiet", "swift", "tidy", "warm"}
	nameRight = []string{"alder", "birch", "cedar", "elm", "fir", "hazel", "larch", "maple", "oak", "pine", "rowan", "willow"}
)

// generateNameLocked picks an unused name like "calm_cedar".
func (e *Engine) generateNameLocked(id string) string {
	for range 16 {
		n := nameLeft[mrand.IntN(len(nameLeft))] + "_" + nameRight[mrand.IntN(len(nameRight))]
		if _, used := e.names[n]; !used {
			return n
		}
	}
	return "c_" + id[:12]
}

func (e *Engine) requireActive(c *container, ref string) (exits int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !isActive(c.rec.State) {
		return 0, fmt.Errorf("container %s is %s, not running: %w", ref, c.rec.State, errdefs.ErrFailedPrecondition)
	}
	return c.exits, nil
}

// stoppedMeanwhile returns err, the error of a call to c's task made once
// requireActive returned exits, or the refusal requireActive would give now
// when the task stopped meanwhile (stoppedSince): the call failed because
// the task went away, whatever containerd said (a closing shim answers
// "ttrpc: closed").
func stoppedMeanwhile(c *container, ref string, exits int, err error) error {
	if err == nil || !stoppedSince(c, exits) {
		return err
	}
	return fmt.Errorf("container %s is not running: %w", ref, errdefs.ErrFailedPrecondition)
}
