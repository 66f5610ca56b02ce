package main

import (
	"bytes"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestCLIEnv: -e of run, create and exec takes NAME=VALUE, or a bare NAME
// valued from the CLI's environment (dropped when unset), as docker's CLI.
func TestCLIEnv(t *testing.T) {
	t.Setenv("TEND_TEST_SET", "from the cli")
	got, err := cliEnv([]string{"A=1", "TEND_TEST_SET", "TEND_TEST_UNSET_X", "B=", "C=x=y"})
	if want := []string{"A=1", "TEND_TEST_SET=from the cli", "B=", "C=x=y"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("cliEnv: %q, %v; want %q", got, err, want)
	}
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, args := range [][]string{{"exec", "-e", "=x", "c", "true"}, {"exec", "-e", "", "c", "true"}, {"run", "-e", "=x", "img"}} {
		var out, errb bytes.Buffer
		code := run(append([]string{"-H", sock}, args...), strings.NewReader(""), &out, &errb)
		if code != 125 || !strings.Contains(errb.String(), "invalid environment variable") {
			t.Errorf("%q: exit %d, stderr %q; want 125 naming the variable", args, code, errb.String())
		}
	}
}
