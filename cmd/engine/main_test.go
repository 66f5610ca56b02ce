package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestFlagErrors checks that bad flags and arguments are refused before
// the daemon is asked, with exit code 125 and a message saying what is
// wrong.
func TestFlagErrors(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"run", "--memory", "12q", "img"}, 125, "invalid memory size"},
		{[]string{"run", "--memory", "1k", "img"}, 125, "minimum is 6MiB"},
		{[]string{"run", "--restart", "sometimes", "img"}, 125, "restart policy"},
		{[]string{"run", "--rm", "--restart", "always", "img"}, 125, "conflicting options"},
		{[]string{"run", "--health-interval", "1s", "img"}, 125, "need --health-cmd"},
		{[]string{"run", "--health-cmd", "true", "--on-unhealthy", "explode", "img"}, 125, "on-unhealthy"},
		{[]string{"run", "--no-healthcheck", "--health-cmd", "true", "img"}, 125, "conflicts"},
		{[]string{"run", "--health-cmd", "true", "--health-retries", "-1", "img"}, 125, "retries"},
		{[]string{"run", "--cpus", "-1", "img"}, 125, "--cpus"},
		{[]string{"run", "-e", "=x", "img"}, 125, "environment variable"},
		{[]string{"run", "--label", "=v", "img"}, 125, "invalid label"},
		{[]string{"run"}, 125, "requires an IMAGE"},
		{[]string{"run", "--bogus", "img"}, 125, "unknown flag"},
		{[]string{"stop"}, 125, "requires at least 1 arg"},
		{[]string{"logs", "--tail", "x", "c"}, 125, "invalid --tail"},
		{[]string{"logs", "--since", "yesterday", "c"}, 125, "invalid time"},
		{[]string{"events", "--since", "-5m"}, 125, "must not be negative"},
		{[]string{"stop", "-t", "-5", "c"}, 125, "invalid --time"},
		{[]string{"exec", "-e", "NOEQUALS", "c", "true"}, 125, "environment variable"},
		{[]string{"-H", "tcp://1.2.3.4:2375", "ps"}, 125, "only unix sockets"},
		{[]string{"daemon", "--log-level", "loud"}, 125, "invalid --log-level"},
		// The flags are fine; the daemon is not there.
		{[]string{"ps"}, 1, "is `engine daemon` running?"},
		{[]string{"run", "img", "true"}, 125, "is `engine daemon` running?"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"-H", sock}, tc.args...)
			code := run(args, strings.NewReader(""), &out, &errb)
			if code != tc.code || !strings.Contains(errb.String(), tc.msg) || !strings.HasPrefix(errb.String(), "Error: ") {
				t.Errorf("exit %d, stderr %q; want exit %d and stderr containing %q", code, errb.String(), tc.code, tc.msg)
			}
		})
	}
}
