package backend

import (
	"regexp"
	"strings"
)

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
