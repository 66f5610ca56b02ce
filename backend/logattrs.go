package backend

import (
	"fmt"
	"regexp"
	"strings"

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

// LogAttrs are the extra attributes of the container's log lines, as
// docker's logger.Info.ExtraAttributes chooses them: the labels named by
// "labels" or matching "labels-regex", the variables of Env named by "env"
// or matching "env-regex". Nil when the container has no log options.
func LogAttrs(o *CreateOptions) map[string]string {
	if len(o.LogOpts) == 0 {
		return nil
	}
	out := map[string]string{}
	if keys := o.LogOpts[LogOptLabels]; keys != "" {
		for _, k := range strings.Split(keys, ",") {
			if v, ok := o.Labels[k]; ok {
				out[k] = v
			}
		}
	}
	if re, err := regexp.Compile(o.LogOpts[LogOptLabelsRegex]); err == nil && o.LogOpts[LogOptLabelsRegex] != "" {
		for k, v := range o.Labels {
			if re.MatchString(k) {
				out[k] = v
			}
		}
	}
	env := map[string]string{}
	for _, e := range o.Env {
		if k, v, ok := strings.Cut(e, "="); ok {
			env[k] = v
		}
	}
	if names := o.LogOpts[LogOptEnv]; names != "" {
		for _, k := range strings.Split(names, ",") {
			if v, ok := env[k]; ok {
				out[k] = v
			}
		}
	}
	if re, err := regexp.Compile(o.LogOpts[LogOptEnvRegex]); err == nil && o.LogOpts[LogOptEnvRegex] != "" {
		for k, v := range env {
			if re.MatchString(k) {
				out[k] = v
			}
		}
	}
	return out
}
