package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestFlagErrors checks that bad daemon flags are refused before anything
// starts, with exit code 125 and a message saying what is wrong.
func TestFlagErrors(t *testing.T) {
	// An empty config file: the machine's /etc/tend/daemon.json must not
	// change what the flags say.
	cfg := filepath.Join(t.TempDir(), "daemon.json")
	if err := writeFile(cfg, "{}"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--log-level", "loud"}, "invalid --log-level"},
		{[]string{"--max-import-size", "1k"}, "--max-import-size"},
		{[]string{"--max-import-size", "99999999p"}, "--max-import-size"},
		{[]string{"--probe-concurrency", "-1"}, "--probe-concurrency"},
		{[]string{"--probe-concurrency", "100000"}, "want 0 (the default) to 1024"},
		{[]string{"--containers-per-shim", "999"}, "containers per shim"},
		{[]string{"--bogus"}, "unknown flag"},
		{[]string{"extra"}, "unknown command \"extra\""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(append([]string{"--config-file", cfg}, tc.args...), &out, &errb)
			if code != exitUsage || !strings.Contains(errb.String(), tc.msg) || !strings.HasPrefix(errb.String(), "Error: ") {
				t.Errorf("exit %d, stderr %q; want exit %d and stderr containing %q", code, errb.String(), exitUsage, tc.msg)
			}
		})
	}
}
