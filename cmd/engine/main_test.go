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
		{[]string{"exec", "-e", "=NONAME", "c", "true"}, 125, "environment variable"},
		{[]string{"-H", "tcp://1.2.3.4:2375", "ps"}, 125, "only unix sockets"},
		// Numbers out of range never become something else.
		{[]string{"run", "--memory", "0.0000001k", "img"}, 125, "less than one byte"},
		{[]string{"run", "--memory", "5m", "img"}, 125, "minimum is 6MiB"},
		{[]string{"run", "--memory", "99999999p", "img"}, 125, "too large"},
		{[]string{"run", "--memory", "2048p", "img"}, 125, "maximum is 1PiB"},
		{[]string{"run", "--cpus", "NaN", "img"}, 125, "--cpus"},
		{[]string{"run", "--cpus", "+Inf", "img"}, 125, "--cpus"},
		{[]string{"run", "--cpus", "1e300", "img"}, 125, "more CPUs than any host"},
		{[]string{"run", "--cpus", "0.001", "img"}, 125, "minimum is 0.01"},
		{[]string{"run", "--pids-limit", "-1", "img"}, 125, "--pids-limit"},
		{[]string{"run", "--pids-limit", "99999999", "img"}, 125, "maximum is 4194304"},
		{[]string{"run", "--health-cmd", "true", "--health-interval", "1000000h", "img"}, 125, "health check interval"},
		{[]string{"run", "--health-cmd", "true", "--health-timeout", "9999999999h", "img"}, 125, "health-timeout"},
		{[]string{"run", "--health-cmd", "true", "--health-start-period", "-1s", "img"}, 125, "start period"},
		{[]string{"run", "--health-cmd", "true", "--health-start-interval", "10000h", "img"}, 125, "start interval"},
		{[]string{"run", "--health-cmd", "true", "--health-retries", "3000000000", "img"}, 125, "retries"},
		{[]string{"run", "--restart", "on-failure:99999999999", "img"}, 125, "on-failure"},
		{[]string{"stop", "-t", "99999999999", "c"}, 125, "invalid --time"},
		{[]string{"restart", "-t", "-2", "c"}, 125, "invalid --time"},
		{[]string{"kill", "-s", "65", "c"}, 1, "invalid signal"},
		{[]string{"kill", "-s", "0", "c"}, 1, "invalid signal"},
		{[]string{"kill", "-s", "-9", "c"}, 1, "invalid signal"},
		{[]string{"kill", "-s", "NOPE", "c"}, 1, "invalid signal"},
		{[]string{"logs", "--tail", "99999999999", "c"}, 125, "invalid --tail"},
		{[]string{"logs", "--tail", "-1", "c"}, 125, "invalid --tail"},
		{[]string{"logs", "--since", "1e300", "c"}, 125, "invalid time"},
		{[]string{"events", "--since", "NaN"}, 125, "invalid time"},
		{[]string{"events", "--until", "Inf"}, 125, "invalid time"},
		// Names and references that no object has are refused before
		// anything is sent: 125 for run (nothing ran), 1 elsewhere, as
		// when the daemon refuses them.
		{[]string{"run", "--name", "../x", "img"}, 125, "invalid container name"},
		{[]string{"run", "img", ""}, 125, "first word is empty"},
		{[]string{"run", "UPPER/Case", "true"}, 125, "invalid image reference"},
		{[]string{"stop", ".."}, 1, "invalid container reference"},
		{[]string{"kill", "a/b"}, 1, "invalid container reference"},
		{[]string{"inspect", "."}, 1, "invalid container reference"},
		{[]string{"logs", "."}, 1, "invalid container reference"},
		{[]string{"checkpoint", "rm", "C", ".."}, 1, "invalid checkpoint name"},
		{[]string{"checkpoint", "create", "C", "a/b"}, 1, "invalid checkpoint name"},
		{[]string{"checkpoint", "ls", "%2e%2e"}, 1, "invalid container reference"},
		{[]string{"start", "--checkpoint", "..", "C"}, 1, "invalid checkpoint name"},
		{[]string{"start", "C", ".."}, 1, "invalid container reference"},
		{[]string{"rm", "-f", "C/.."}, 1, "invalid container reference"},
		{[]string{"exec", "..", "true"}, 1, "invalid container reference"},
		{[]string{"attach", "."}, 1, "invalid container reference"},
		{[]string{"top", ".."}, 1, "invalid container reference"},
		{[]string{"image", "rm", "busybox", "../x"}, 1, "invalid image reference"},
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
