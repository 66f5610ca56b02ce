package types

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/pkg/cap"
)

// MaxShmSize bounds --shm-size: 1 TiB.
const MaxShmSize = 1 << 40

// Ulimit is one resource limit of the container's processes (docker run
// --ulimit name=soft[:hard]); -1 is unlimited.
type Ulimit struct {
	Name string `json:"name"`
	Soft int64  `json:"soft"`
	Hard int64  `json:"hard"`
}

// ulimitNames are the limits --ulimit takes, as Docker's.
var ulimitNames = []string{"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack"}

// ParseUlimit parses docker's --ulimit value: name=soft[:hard].
func ParseUlimit(s string) (Ulimit, error) {
	name, v, ok := strings.Cut(s, "=")
	if !ok {
		return Ulimit{}, invalid("--ulimit %q: want name=soft[:hard], such as nofile=1024:2048", s)
	}
	soft, hard, hasHard := strings.Cut(v, ":")
	u := Ulimit{Name: name}
	var err error
	if u.Soft, err = strconv.ParseInt(soft, 10, 64); err != nil {
		return Ulimit{}, invalid("--ulimit %q: soft limit %q is not a whole number", s, soft)
	}
	u.Hard = u.Soft
	if hasHard {
		if u.Hard, err = strconv.ParseInt(hard, 10, 64); err != nil {
			return Ulimit{}, invalid("--ulimit %q: hard limit %q is not a whole number", s, hard)
		}
	}
	return u, CheckUlimit(u)
}

// CheckUlimit checks a limit of CreateOptions.Ulimits as ParseUlimit does.
func CheckUlimit(u Ulimit) error {
	if !slices.Contains(ulimitNames, u.Name) {
		return invalid("--ulimit %s: unknown limit %q: want one of %s", u.Name, u.Name, strings.Join(ulimitNames, ", "))
	}
	if u.Soft < -1 || u.Hard < -1 {
		return invalid("--ulimit %s=%d:%d: a limit is a number from 0 up, or -1 for unlimited", u.Name, u.Soft, u.Hard)
	}
	if lim(u.Soft) > lim(u.Hard) {
		return invalid("--ulimit %s=%d:%d: the soft limit is above the hard limit", u.Name, u.Soft, u.Hard)
	}
	return nil
}

// lim is an rlimit value: -1 is RLIM_INFINITY.
func lim(v int64) uint64 {
	if v == -1 {
		return math.MaxUint64
	}
	return uint64(v)
}

// RlimitSoft is the soft limit as setrlimit takes it (-1: RLIM_INFINITY).
func (u Ulimit) RlimitSoft() uint64 { return lim(u.Soft) }

// RlimitHard is the hard limit as setrlimit takes it (-1: RLIM_INFINITY).
func (u Ulimit) RlimitHard() uint64 { return lim(u.Hard) }

// NormalizeCapability turns "net_admin", "NET_ADMIN" or "CAP_NET_ADMIN"
// into "CAP_NET_ADMIN", and "all" into "ALL"; an unknown capability is
// errdefs.ErrInvalidArgument.
func NormalizeCapability(c string) (string, error) {
	u := strings.ToUpper(c)
	if u == "ALL" {
		return u, nil
	}
	if !strings.HasPrefix(u, "CAP_") {
		u = "CAP_" + u
	}
	if !slices.Contains(cap.Known(), u) {
		return "", invalid("unknown capability %q: want a name from capabilities(7) such as NET_ADMIN, or ALL", c)
	}
	return u, nil
}
