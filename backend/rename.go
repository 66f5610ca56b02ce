package backend

import (
	"context"
	"fmt"
	"strings"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/libcontainerd"
)

// Rename gives a container a new name, as docker rename: the old name is
// free at once, a name in use is errdefs.ErrAlreadyExists. It emits a
// "rename" event with the old name (oldName) as docker's.
func (e *Engine) Rename(ctx context.Context, ref, newName string) error {
	newName = strings.TrimPrefix(newName, "/")
	if libcontainerd.ValidateID(newName) != nil {
		return fmt.Errorf("invalid container name %q: want letters and digits joined by single '_', '.' or '-', at most 76 characters: %w", newName, errdefs.ErrInvalidArgument)
	}
	c, err := e.lockContainer(ref)
	if err != nil {
		return err
	}
	defer c.op.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.rec.Name
	if old == newName {
		return fmt.Errorf("renaming a container with the same name as its current name: %w", errdefs.ErrInvalidArgument)
	}
	e.mu.Lock()
	if other, used := e.names[newName]; used {
		e.mu.Unlock()
		return fmt.Errorf("the name %q is in use by container %s: remove it or pick another name: %w", newName, shortID(other), errdefs.ErrAlreadyExists)
	}
	e.names[newName] = c.rec.ID
	delete(e.names, old)
	e.mu.Unlock()
	c.rec.Name = newName
	snap := e.snapLocked(c)
	e.emitLocked(c, "rename", map[string]string{"oldName": "/" + old})
	e.notifyLocked(c)
	// The record is written with c.mu released (save takes it).
	c.mu.Unlock()
	e.save(c, snap)
	c.mu.Lock()
	return nil
}
