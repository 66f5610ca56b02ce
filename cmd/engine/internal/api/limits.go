package api

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/sys/signal"

	"github.com/tendhq/tend/healthcheck"
)

// Limits of the numbers the API takes. Every number is checked against
// them at the API and in the CLI, so that none wraps or rounds into
// something else (an overflowed stop timeout into an immediate SIGKILL, a
// huge CPU count into "no limit").
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
	// MaxTerminalSize bounds a terminal's width and height (the kernel's
	// winsize holds 16 bits).
	MaxTerminalSize = math.MaxUint16
	// MaxUnixSeconds is the last second of year 9999, the latest time a
	// since or until may name.
	MaxUnixSeconds = 253402300799
	// MaxSignal is the highest signal number (SIGRTMAX on Linux).
	MaxSignal = 64
)

func invalid(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)
}

// CheckResources reports resource limits out of range. hostCPUs, when
// above 0, is the number of CPUs a limit may not exceed.
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

// CheckRestart reports a restart policy count out of range.
func CheckRestart(p RestartPolicy) error {
	if p.MaximumRetryCount < 0 || p.MaximumRetryCount > MaxRetries {
		return invalid("invalid restart policy maximum retry count %d: want 0 to %d", p.MaximumRetryCount, MaxRetries)
	}
	return nil
}

// CheckHealth reports health check numbers out of range; the rest is
// healthcheck.Config.Validate's.
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

// CheckCreate reports what in o the API refuses before the engine sees it:
// numbers out of range, an empty label key, an empty command.
func CheckCreate(o *CreateOptions, hostCPUs int) error {
	if o.Name != "" {
		if err := ValidateName("container name", strings.TrimPrefix(o.Name, "/")); err != nil {
			return err
		}
	}
	for k := range o.Labels {
		if k == "" {
			return invalid("invalid label with an empty key: want KEY=VALUE")
		}
	}
	if len(o.Cmd) > 0 && o.Cmd[0] == "" {
		return invalid("invalid command: its first word is empty: give the program to run")
	}
	if err := CheckResources(o.Resources, hostCPUs); err != nil {
		return err
	}
	if err := CheckRestart(o.Restart); err != nil {
		return err
	}
	return CheckHealth(o.Health)
}

// ParseTimeout parses a stop or restart timeout in whole seconds, 0 to
// MaxTimeoutSeconds.
func ParseTimeout(v string) (time.Duration, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > MaxTimeoutSeconds {
		return 0, invalid("invalid timeout %s: want a whole number of seconds from 0 to %d", Echo(v), int64(MaxTimeoutSeconds))
	}
	return time.Duration(n) * time.Second, nil
}

// ParseTail parses a number of log lines: "all" (or empty) is -1.
func ParseTail(v string) (int, error) {
	if v == "" || v == "all" {
		return -1, nil
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 0 {
		return 0, invalid("invalid tail %s: want all or a number of lines from 0 to %d", Echo(v), math.MaxInt32)
	}
	return int(n), nil
}

// ParseUnixSeconds parses unix seconds with an optional fraction, from 0
// to the end of year 9999.
func ParseUnixSeconds(v string) (time.Time, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > MaxUnixSeconds {
		return time.Time{}, invalid("invalid time %s: want RFC 3339 or unix seconds from 0 to %d", Echo(v), int64(MaxUnixSeconds))
	}
	sec := math.Floor(f)
	return time.Unix(int64(sec), int64((f-sec)*1e9)), nil
}

// CheckTerminalSize reports a terminal size out of range; 0 by 0 means
// none.
func CheckTerminalSize(w, h uint32) error {
	if (w == 0) != (h == 0) || w > MaxTerminalSize || h > MaxTerminalSize {
		return invalid("invalid terminal size %dx%d: want a width and a height from 1 to %d", w, h, MaxTerminalSize)
	}
	return nil
}

// ParseSignal parses a signal by name ("KILL", "SIGKILL", "RTMIN+3") or
// number, 1 to 64; empty is SIGKILL.
func ParseSignal(s string) (syscall.Signal, error) {
	if s == "" {
		return syscall.SIGKILL, nil
	}
	sig, err := signal.ParseSignal(s)
	if err != nil {
		return 0, invalid("invalid signal %s: want a name such as TERM, KILL, HUP or a number from 1 to %d", Echo(s), MaxSignal)
	}
	if sig < 1 || sig > MaxSignal {
		return 0, invalid("invalid signal %s: numbers go from 1 to %d", Echo(s), MaxSignal)
	}
	return sig, nil
}
