package backend

import (
	"fmt"

	"github.com/containerd/errdefs"
)

// transitions lists, for each state, the states a container may move to.
var transitions = map[State][]State{
	StateCreated:    {StateRunning, StateRemoving, StateDead},
	StateRunning:    {StatePaused, StateExited, StateRestarting, StateDead},
	StatePaused:     {StateRunning, StateExited, StateRestarting, StateDead},
	StateRestarting: {StateRunning, StateExited, StateRestarting, StateRemoving, StateDead},
	StateExited:     {StateRunning, StateRestarting, StateRemoving, StateDead},
	StateDead:       {StateRemoving},
	StateRemoving:   {StateDead},
}

func knownState(s State) bool {
	_, ok := transitions[s]
	return ok
}

// transition is the only place that changes a record's state. A move the
// state machine does not allow is an errdefs.ErrFailedPrecondition.
func transition(c *Container, to State) error {
	if c.State == to && to == StateRestarting {
		return nil
	}
	for _, s := range transitions[c.State] {
		if s == to {
			c.State = to
			return nil
		}
	}
	return fmt.Errorf("container %s is %s: cannot become %s: %w", shortID(c.ID), c.State, to, errdefs.ErrFailedPrecondition)
}

// isActive reports whether the container has (or should have) a live task.
func isActive(s State) bool { return s == StateRunning || s == StatePaused }

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
