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

	backendtypes "github.com/tendhq/tend/backend/types"
)

// Limits of the numbers the API takes besides the engine's (backendtypes.MinMemory
// and the rest, which the API checks with the backend's own checks). Every
// number is checked at the API and in the CLI, so that none wraps or rounds
// into something else.
const (
	// MaxTerminalSize bounds a terminal's width and height (the kernel's
	// winsize holds 16 bits).
	MaxTerminalSize = math.MaxUint16
	// MaxUnixSeconds is the last second of year 9999, the latest time a
	// since or until may name.
	MaxUnixSeconds = 253402300799
)

func invalid(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)
}

// CheckCreate reports what in o the API refuses before the engine sees it:
// numbers out of range, an empty label key, an empty command.
func CheckCreate(o *CreateOptions, hostCPUs int) error {
	if o.Name != "" {
		if err := ValidateName("container name", strings.TrimPrefix(o.Name, "/")); err != nil {
			return err
		}
	}
	if err := backendtypes.CheckLabels(o.Labels); err != nil {
		return err
	}
	if err := backendtypes.CheckCmd(o.Cmd); err != nil {
		return err
	}
	if err := backendtypes.CheckResources(o.Resources, hostCPUs); err != nil {
		return err
	}
	if err := backendtypes.CheckRestart(o.Restart); err != nil {
		return err
	}
	return backendtypes.CheckHealth(o.Health)
}

// ParseTimeout parses a stop or restart timeout in whole seconds, 0 to
// MaxTimeoutSeconds.
func ParseTimeout(v string) (time.Duration, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > backendtypes.MaxTimeoutSeconds {
		return 0, invalid("invalid timeout %s: want a whole number of seconds from 0 to %d", Echo(v), int64(backendtypes.MaxTimeoutSeconds))
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
		return 0, invalid("invalid signal %s: want a name such as TERM, KILL, HUP or a number from 1 to %d", Echo(s), backendtypes.MaxSignal)
	}
	if err := backendtypes.CheckSignal(sig); err != nil {
		return 0, invalid("invalid signal %s: numbers go from 1 to %d", Echo(s), backendtypes.MaxSignal)
	}
	return sig, nil
}
