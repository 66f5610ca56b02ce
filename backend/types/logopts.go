package types

import (
	"fmt"
	"regexp"

	"github.com/containerd/errdefs"
)

// Log options (docker's --log-opt of the json-file driver) that choose the
// extra attributes of each log line, which `logs --details` shows. Tend's
// log files are rotated by the daemon's settings, so the size options are
// not taken per container.
const (
	LogOptLabels      = "labels"       // comma-separated label keys
	LogOptLabelsRegex = "labels-regex" // label keys matching a regexp
	LogOptEnv         = "env"          // comma-separated variable names
	LogOptEnvRegex    = "env-regex"    // variable names matching a regexp
)

// maxLogOpt bounds one log option's value.
const maxLogOpt = 4096

// CheckLogOpts refuses a log option tend does not know, as docker's
// json-file driver does, or a regexp that does not compile.
func CheckLogOpts(opts map[string]string) error {
	for k, v := range opts {
		switch k {
		case LogOptLabels, LogOptEnv:
		case LogOptLabelsRegex, LogOptEnvRegex:
			if _, err := regexp.Compile(v); err != nil {
				return fmt.Errorf("invalid log opt %s=%q: %v: %w", k, v, err, errdefs.ErrInvalidArgument)
			}
		default:
			return fmt.Errorf("unknown log opt '%s' for json-file log driver: tend takes %s, %s, %s and %s: %w",
				k, LogOptLabels, LogOptLabelsRegex, LogOptEnv, LogOptEnvRegex, errdefs.ErrInvalidArgument)
		}
		if len(v) > maxLogOpt {
			return fmt.Errorf("log opt %s: %d bytes, at most %d: %w", k, len(v), maxLogOpt, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}
