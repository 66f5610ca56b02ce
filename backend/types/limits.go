package types

import (
	"fmt"
	"math"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/sys/signal"

	"github.com/tendhq/tend/healthcheck"
)

// Limits of the numbers the engine takes. Create, Stop, Restart and Kill
// check them, and so does any front end before it calls the engine, so
// that no number wraps or rounds into something else (an overflowed stop
// timeout into an immediate SIGKILL, a huge CPU count into "no limit").
const (
	// MinMemory is the smallest memory limit, as Docker's (runc fails
	// below it, or the container is killed as soon as it starts).
	MinMemory = 6 << 20
	// MaxMemory is the largest memory limit: 1 PiB, well past any host,
	// short of what the kernel rounds to "no limit".
	MaxMemory = 1 << 50
	// MinCPUs is the smallest CPU limit: one hundredth of a core.
	MinCPUs = 0.01
	// MaxPids is the largest pids limit: the kernel's PID_MAX_LIMIT.
	MaxPids = 4 << 20
	// MaxRetries bounds a restart policy's and a health check's counts.
	MaxRetries = math.MaxInt32
	// MaxTimeoutSeconds bounds a stop or restart timeout (about 68 years).
	MaxTimeoutSeconds = math.MaxInt32
	// MaxHealthDuration bounds the durations of a health check.
	MaxHealthDuration = 365 * 24 * time.Hour
	// MaxSignal is the highest signal number (SIGRTMAX on Linux).
	MaxSignal = 64
)

func invalid(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)
}

// CheckResources reports resource limits out of range as
// errdefs.ErrInvalidArgument. hostCPUs, when above 0, is the number of CPUs
// a limit may not exceed.
func CheckResources(r Resources, hostCPUs int) error {
	switch m := r.MemoryBytes; {
	case m < 0:
		return invalid("invalid memory limit %d: must not be negative (0 is no limit)", m)
	case m > 0 && m < MinMemory:
		return invalid("invalid memory limit %d bytes: the minimum is 6MiB (0 is no limit)", m)
	case m > MaxMemory:
		return invalid("invalid memory limit %d bytes: the maximum is 1PiB", m)
	}
	c := r.CPUs
	switch {
	case math.IsNaN(c) || math.IsInf(c, 0):
		return invalid("invalid CPU limit %v: want a number of CPUs such as 1.5 (0 is no limit)", c)
	case c < 0:
		return invalid("invalid CPU limit %v: must not be negative (0 is no limit)", c)
	case c > 0 && c < MinCPUs:
		return invalid("invalid CPU limit %v: the minimum is %.2f", c, MinCPUs)
	case hostCPUs > 0 && c > float64(hostCPUs):
		return invalid("invalid CPU limit %v: range of CPUs is from %.2f to %d.00, as there are only %d CPUs available", c, MinCPUs, hostCPUs, hostCPUs)
	case c > float64(MaxPids):
		// No host has that many; it would overflow the CFS quota.
		return invalid("invalid CPU limit %v: more CPUs than any host has", c)
	}
	switch p := r.PidsLimit; {
	case p < 0:
		return invalid("invalid pids limit %d: must not be negative (0 is no limit)", p)
	case p > MaxPids:
		return invalid("invalid pids limit %d: the maximum is %d", p, MaxPids)
	}
	return nil
}

// CheckRestart reports a restart policy count out of range as
// errdefs.ErrInvalidArgument.
func CheckRestart(p RestartPolicy) error {
	if p.MaximumRetryCount < 0 || p.MaximumRetryCount > MaxRetries {
		return invalid("invalid restart policy maximum retry count %d: want 0 to %d", p.MaximumRetryCount, MaxRetries)
	}
	return nil
}

// CheckHealth reports health check numbers out of range as
// errdefs.ErrInvalidArgument; the rest is healthcheck.Config.Validate's.
func CheckHealth(h *healthcheck.Config) error {
	if h == nil {
		return nil
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"interval", h.Interval}, {"timeout", h.Timeout}, {"start period", h.StartPeriod}, {"start interval", h.StartInterval},
	} {
		if d.v < 0 || d.v > MaxHealthDuration {
			return invalid("invalid health check %s %v: want 0 (the default) to %v", d.name, d.v, MaxHealthDuration)
		}
	}
	if h.Retries < 0 || h.Retries > MaxRetries {
		return invalid("invalid health check retries %d: want 0 (the default) to %d", h.Retries, MaxRetries)
	}
	return h.Validate()
}

// CheckLabels reports a label with an empty key as
// errdefs.ErrInvalidArgument.
func CheckLabels(labels map[string]string) error {
	if _, ok := labels[""]; ok {
		return invalid("invalid label with an empty key: want KEY=VALUE")
	}
	return nil
}

// CheckCmd reports a command whose program is empty as
// errdefs.ErrInvalidArgument. No command at all is fine: the image's runs.
func CheckCmd(cmd []string) error {
	if len(cmd) > 0 && cmd[0] == "" {
		return invalid("invalid command: its first word is empty: give the program to run")
	}
	return nil
}

// CheckStopTimeout reports a stop or restart timeout out of range (0 to
// MaxTimeoutSeconds seconds) as errdefs.ErrInvalidArgument. nil, the
// engine's default, is in range.
func CheckStopTimeout(timeout *time.Duration) error {
	if timeout == nil {
		return nil
	}
	if d := *timeout; d < 0 || d > MaxTimeoutSeconds*time.Second {
		return invalid("invalid stop timeout %v: want 0 to %d seconds, or none for the default", d, int64(MaxTimeoutSeconds))
	}
	return nil
}

// CheckSignal reports a signal number out of range (1 to MaxSignal) as
// errdefs.ErrInvalidArgument.
func CheckSignal(sig syscall.Signal) error {
	if sig < 1 || sig > MaxSignal {
		return invalid("invalid signal %d: want a number from 1 to %d", int(sig), MaxSignal)
	}
	return nil
}

// ParseStopSignal parses a stop signal by name ("TERM", "SIGQUIT",
// "RTMIN+3") or number, 1 to MaxSignal.
func ParseStopSignal(s string) (syscall.Signal, error) {
	sig, err := signal.ParseSignal(s)
	if err != nil || CheckSignal(sig) != nil {
		return 0, invalid("invalid stop signal %q: want a name such as TERM, QUIT, INT or a number from 1 to %d", s, MaxSignal)
	}
	return sig, nil
}
