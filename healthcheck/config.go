package healthcheck

import (
	"fmt"
	"strings"
	"time"

	"github.com/containerd/errdefs"
)

// Defaults applied by Config.WithDefaults to zero fields, as in Docker.
const (
	DefaultInterval      = 30 * time.Second
	DefaultTimeout       = 30 * time.Second
	DefaultStartPeriod   = 0
	DefaultStartInterval = 5 * time.Second
	DefaultRetries       = 3

	// MinDuration is the smallest non-zero duration accepted for Interval,
	// Timeout, StartPeriod and StartInterval.
	MinDuration = time.Millisecond
)

// Test kinds accepted as Config.Test[0].
const (
	TestNone     = "NONE"
	TestCmd      = "CMD"
	TestCmdShell = "CMD-SHELL"
)

// Action is what the caller should do with a container that became unhealthy.
// The Scheduler only reports status changes; carrying out the action is the
// caller's job.
type Action string

// Actions accepted by ParseAction.
const (
	ActionNone    Action = "none"
	ActionKill    Action = "kill"
	ActionRestart Action = "restart"
	ActionStop    Action = "stop"
)

// ParseAction parses an on-unhealthy action; the empty string means ActionNone.
func ParseAction(s string) (Action, error) {
	switch a := Action(strings.ToLower(strings.TrimSpace(s))); a {
	case "", ActionNone:
		return ActionNone, nil
	case ActionKill, ActionRestart, ActionStop:
		return a, nil
	default:
		return "", fmt.Errorf("invalid on-unhealthy action %q: want none, kill, restart or stop: %w", s, errdefs.ErrInvalidArgument)
	}
}

// Config describes a container's health probe, as Docker's HEALTHCHECK.
// Zero durations and Retries mean the Default* values.
type Config struct {
	// Test is ["NONE"], ["CMD", argv...] or ["CMD-SHELL", "command"]; the
	// latter runs as /bin/sh -c command.
	Test []string `json:"test"`
	// Interval is the time between the end of a probe and the start of the next.
	Interval time.Duration `json:"interval,omitempty"`
	// Timeout bounds a probe from the moment its process is running.
	Timeout time.Duration `json:"timeout,omitempty"`
	// StartPeriod is how long after (re)start failures do not count while the
	// container has not been healthy yet.
	StartPeriod time.Duration `json:"start_period,omitempty"`
	// StartInterval replaces Interval while in the start period and starting.
	StartInterval time.Duration `json:"start_interval,omitempty"`
	// Retries is the number of consecutive counted failures that make the
	// container unhealthy.
	Retries int `json:"retries,omitempty"`
	// OnUnhealthy is what the caller should do when the container becomes
	// unhealthy; empty means ActionNone.
	OnUnhealthy Action `json:"on_unhealthy,omitempty"`
}

// Validate reports, as errdefs.ErrInvalidArgument, what is wrong with c.
func (c Config) Validate() error {
	if len(c.Test) == 0 {
		return fmt.Errorf("invalid health check: empty test: want [\"NONE\"], [\"CMD\", argv...] or [\"CMD-SHELL\", command]: %w", errdefs.ErrInvalidArgument)
	}
	switch c.Test[0] {
	case TestNone:
		if len(c.Test) != 1 {
			return fmt.Errorf("invalid health check: NONE takes no arguments, got %q: %w", c.Test[1:], errdefs.ErrInvalidArgument)
		}
	case TestCmd:
		if len(c.Test) < 2 || c.Test[1] == "" {
			return fmt.Errorf("invalid health check: CMD needs a command, as [\"CMD\", \"/bin/check\", args...]: %w", errdefs.ErrInvalidArgument)
		}
	case TestCmdShell:
		if len(c.Test) != 2 || strings.TrimSpace(c.Test[1]) == "" {
			return fmt.Errorf("invalid health check: CMD-SHELL needs exactly one non-empty command string, got %q: %w", c.Test[1:], errdefs.ErrInvalidArgument)
		}
	default:
		return fmt.Errorf("invalid health check: unknown test kind %q: want NONE, CMD or CMD-SHELL: %w", c.Test[0], errdefs.ErrInvalidArgument)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"interval", c.Interval},
		{"timeout", c.Timeout},
		{"start period", c.StartPeriod},
		{"start interval", c.StartInterval},
	} {
		if d.v < 0 {
			return fmt.Errorf("invalid health check %s %v: must not be negative (0 means the default): %w", d.name, d.v, errdefs.ErrInvalidArgument)
		}
		if d.v > 0 && d.v < MinDuration {
			return fmt.Errorf("invalid health check %s %v: must be at least %v (0 means the default): %w", d.name, d.v, MinDuration, errdefs.ErrInvalidArgument)
		}
	}
	if c.Retries < 0 {
		return fmt.Errorf("invalid health check retries %d: must not be negative (0 means the default %d): %w", c.Retries, DefaultRetries, errdefs.ErrInvalidArgument)
	}
	switch c.OnUnhealthy {
	case "", ActionNone, ActionKill, ActionRestart, ActionStop:
		return nil
	default:
		return fmt.Errorf("invalid on-unhealthy action %q: want none, kill, restart or stop (see ParseAction): %w", c.OnUnhealthy, errdefs.ErrInvalidArgument)
	}
}

// Argv returns the command to execute in the container, and false when the
// check is disabled (NONE) or Test is not a runnable probe.
func (c Config) Argv() ([]string, bool) {
	if len(c.Test) < 2 {
		return nil, false
	}
	switch c.Test[0] {
	case TestCmd:
		return append([]string(nil), c.Test[1:]...), true
	case TestCmdShell:
		return []string{"/bin/sh", "-c", c.Test[1]}, true
	default:
		return nil, false
	}
}

// WithDefaults returns c with zero fields set to the Default* values.
func (c Config) WithDefaults() Config {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.StartPeriod == 0 {
		c.StartPeriod = DefaultStartPeriod
	}
	if c.StartInterval == 0 {
		c.StartInterval = DefaultStartInterval
	}
	if c.Retries == 0 {
		c.Retries = DefaultRetries
	}
	if c.OnUnhealthy == "" {
		c.OnUnhealthy = ActionNone
	}
	return c
}
