package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestConfineFlagErrors checks that bad image-config and confinement
// flags are refused before the daemon is asked, with exit code 125 and a
// message naming the flag.
func TestConfineFlagErrors(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "none.sock")
	badJSON := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(badJSON, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	badEnv := filepath.Join(dir, "bad.env")
	if err := os.WriteFile(badEnv, []byte("OK=1\nBAD NAME=2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"run", "--cap-add", "NOPE", "img"}, "unknown capability"},
		{[]string{"run", "--cap-drop", "CAP_BOGUS", "img"}, "unknown capability"},
		{[]string{"run", "--security-opt", "seccomp=" + filepath.Join(dir, "missing.json"), "img"}, "--security-opt seccomp="},
		{[]string{"run", "--security-opt", "seccomp=" + badJSON, "img"}, "not valid JSON"},
		{[]string{"run", "--ulimit", "nofile", "img"}, "--ulimit"},
		{[]string{"run", "--ulimit", "nofile=10:5", "img"}, "soft limit is above the hard limit"},
		{[]string{"run", "--ulimit", "bogus=1", "img"}, "unknown limit"},
		{[]string{"run", "--shm-size", "lots", "img"}, "--shm-size"},
		{[]string{"run", "--shm-size", "0", "img"}, "--shm-size"},
		{[]string{"run", "--stop-signal", "NOPE", "img"}, "--stop-signal"},
		{[]string{"run", "--env-file", filepath.Join(dir, "missing.env"), "img"}, "--env-file"},
		{[]string{"run", "--env-file", badEnv, "img"}, "line 2"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(append([]string{"-H", sock}, tc.args...), strings.NewReader(""), &out, &errb)
			if code != 125 || !strings.Contains(errb.String(), tc.msg) {
				t.Errorf("exit %d, stderr %q; want exit 125 and stderr containing %q", code, errb.String(), tc.msg)
			}
		})
	}
}

// TestConfineFlags checks the options the flags become.
func TestConfineFlags(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "app.env")
	if err := os.WriteFile(envFile, []byte("# comment\nA=file\nB=file\n\nC=file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	profile := filepath.Join(dir, "p.json")
	if err := os.WriteFile(profile, []byte("{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The flags as newRunCommand registers them, on a command that runs
	// nothing.
	f := &runFlags{}
	cmd := &cobra.Command{Use: "create"}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringArrayVarP(&f.env, "env", "e", nil, "")
	f.confine.register(cmd.Flags())
	args := []string{"--env-file", envFile, "-e", "B=flag", "-e", "C=flag", "-e", "C=last",
		"-u", "app:staff", "--entrypoint", "", "--stop-signal", "QUIT", "--stop-timeout", "3",
		"--cap-add", "net_admin", "--cap-drop", "ALL", "--security-opt", "seccomp=" + profile,
		"--security-opt", "no-new-privileges", "--read-only", "--tmpfs", "/run:size=1m",
		"--ulimit", "nofile=100:200", "--shm-size", "8m", "img", "echo", "hi"}
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	o, err := f.createOptions(cmd, cmd.Flags().Args())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"A=file", "B=flag", "C=last"}; !reflect.DeepEqual(o.Env, want) {
		t.Errorf("env %q, want %q (--env-file, then -e, last wins)", o.Env, want)
	}
	if o.User != "app:staff" || !reflect.DeepEqual(o.Entrypoint, []string{""}) || o.StopSignal != "QUIT" || o.StopTimeout == nil || *o.StopTimeout != 3 {
		t.Errorf("user %q entrypoint %q stop signal %q timeout %v", o.User, o.Entrypoint, o.StopSignal, o.StopTimeout)
	}
	if want := []string{"seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}", "no-new-privileges"}; !reflect.DeepEqual(o.SecurityOpt, want) {
		t.Errorf("security opts %q, want %q (the profile read and compacted)", o.SecurityOpt, want)
	}
	if !o.ReadonlyRootfs || o.Tmpfs["/run"] != "size=1m" || o.ShmSize != 8<<20 || len(o.Ulimits) != 1 || o.Ulimits[0].Soft != 100 || o.Ulimits[0].Hard != 200 {
		t.Errorf("read-only %v tmpfs %v shm %d ulimits %v", o.ReadonlyRootfs, o.Tmpfs, o.ShmSize, o.Ulimits)
	}
	if !reflect.DeepEqual(o.CapAdd, []string{"net_admin"}) || !reflect.DeepEqual(o.CapDrop, []string{"ALL"}) || !reflect.DeepEqual(o.Cmd, []string{"echo", "hi"}) {
		t.Errorf("cap add %q drop %q cmd %q", o.CapAdd, o.CapDrop, o.Cmd)
	}
}
