package types

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
)

// Restart policy names accepted by ParseRestartPolicy.
const (
	RestartNo            = "no"
	RestartAlways        = "always"
	RestartOnFailure     = "on-failure"
	RestartUnlessStopped = "unless-stopped"
)

// RestartPolicy says when the engine restarts a container whose main process
// exited. The zero value is the "no" policy.
type RestartPolicy struct {
	Name string `json:"name"`
	// MaximumRetryCount bounds the restarts of on-failure; 0 is unlimited.
	MaximumRetryCount int `json:"maximum_retry_count,omitempty"`
}

// ParseRestartPolicy parses "no" (or ""), "always", "on-failure[:N]" (N >= 0,
// 0 meaning unlimited) and "unless-stopped". Anything else is an
// errdefs.ErrInvalidArgument naming the valid forms.
func ParseRestartPolicy(s string) (RestartPolicy, error) {
	bad := func(why string) (RestartPolicy, error) {
		return RestartPolicy{}, fmt.Errorf("invalid restart policy %q%s: want no, always, on-failure[:N] or unless-stopped: %w", s, why, errdefs.ErrInvalidArgument)
	}
	name, count, hasCount := strings.Cut(s, ":")
	switch name {
	case "", RestartNo:
		if hasCount {
			return bad(": only on-failure takes a retry count")
		}
		return RestartPolicy{Name: RestartNo}, nil
	case RestartAlways, RestartUnlessStopped:
		if hasCount {
			return bad(": only on-failure takes a retry count")
		}
		return RestartPolicy{Name: name}, nil
	case RestartOnFailure:
		p := RestartPolicy{Name: RestartOnFailure}
		if hasCount {
			n, err := strconv.Atoi(count)
			if err != nil || n < 0 {
				return bad(": the retry count must be a number >= 0")
			}
			p.MaximumRetryCount = n
		}
		return p, nil
	default:
		return bad("")
	}
}

// String returns the policy in the form ParseRestartPolicy reads.
func (p RestartPolicy) String() string {
	switch {
	case p.Name == "":
		return RestartNo
	case p.Name == RestartOnFailure && p.MaximumRetryCount > 0:
		return fmt.Sprintf("%s:%d", p.Name, p.MaximumRetryCount)
	default:
		return p.Name
	}
}
