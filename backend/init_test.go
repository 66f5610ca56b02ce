package backend

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/healthcheck"
)

func TestCheckInit(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "script")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "none"), "no such file"},
		{"not executable", plain, "not an executable"},
		{"not ELF", script, "not an ELF"},
		{"directory", dir, "not an executable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkInit(tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("checkInit(%s) = %v, want an error saying %q", tc.path, err, tc.want)
			}
		})
	}
	// A dynamically linked binary cannot run in an image without its
	// loader: refused with the fix in the message.
	if _, err := os.Stat("/bin/sh"); err == nil {
		if dyn, _ := isDynamic("/bin/sh"); dyn {
			err := checkInit("/bin/sh")
			if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "gcc -static") {
				t.Errorf("checkInit(dynamic /bin/sh) = %v, want ErrInvalidArgument naming gcc -static", err)
			}
		}
	}
	if _, err := findInit(filepath.Join(dir, "none")); err == nil {
		t.Errorf("findInit(a missing Config.InitPath) = nil, want an error")
	}
}

func isDynamic(path string) (bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	return strings.Contains(string(b), "ld-linux"), nil
}

func TestInstallInit(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(t.TempDir(), "tend-init")
	if err := os.WriteFile(src, []byte("one"), 0o755); err != nil {
		t.Fatal(err)
	}
	dst, err := installInit(root, src)
	if err != nil {
		t.Fatal(err)
	}
	ino := func() uint64 {
		st, err := os.Stat(dst)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o755 {
			t.Errorf("installed mode %v, want 0755", st.Mode().Perm())
		}
		return st.Sys().(*syscall.Stat_t).Ino
	}
	first := ino()
	if dst2, err := installInit(root, src); err != nil || dst2 != dst || ino() != first {
		t.Errorf("second install of the same binary: %s, %v; want the copy left alone", dst2, err)
	}
	// A changed binary replaces the copy by rename: running containers
	// keep the inode they mounted.
	if err := os.WriteFile(src, []byte("two"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := installInit(root, src); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "two" || ino() == first {
		t.Errorf("after a change the copy holds %q (same inode: %v), want the new binary in a new file", b, ino() == first)
	}
	if ents, _ := os.ReadDir(filepath.Dir(dst)); len(ents) != 1 {
		t.Errorf("bin dir holds %d files, want only %s (no temp files)", len(ents), InitBinary)
	}
}

func TestWantInit(t *testing.T) {
	on, off := true, false
	probe := &healthcheck.Config{Test: []string{healthcheck.TestCmd, "true"}}
	none := &healthcheck.Config{Test: []string{"NONE"}}
	for _, tc := range []struct {
		name      string
		available bool
		init      *bool
		health    *healthcheck.Config
		want      bool
		wantErr   error
	}{
		{"auto with probes", true, nil, probe, true, nil},
		{"auto without health", true, nil, nil, false, nil},
		{"auto with NONE", true, nil, none, false, nil},
		{"auto, no tend-init", false, nil, probe, false, nil},
		{"asked", true, &on, nil, true, nil},
		{"refused", true, &off, probe, false, nil},
		{"asked, no tend-init", false, &on, nil, false, errdefs.ErrFailedPrecondition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &Engine{initErr: errors.New("no tend-init anywhere")}
			if tc.available {
				e.initPath, e.initErr = "/x/tend-init", nil
			}
			got, err := e.wantInit(&CreateOptions{Init: tc.init, Health: tc.health})
			if got != tc.want || !errors.Is(err, tc.wantErr) && (tc.wantErr != nil || err != nil) {
				t.Errorf("wantInit = %v, %v; want %v, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// TestWantProbeInit: a container not run under tend-init still gets it
// mounted when it has exec probes to guard, and only then.
func TestWantProbeInit(t *testing.T) {
	probe := &healthcheck.Config{Test: []string{healthcheck.TestCmd, "true"}}
	none := &healthcheck.Config{Test: []string{"NONE"}}
	for _, tc := range []struct {
		name      string
		available bool
		health    *healthcheck.Config
		want      bool
	}{
		{"probes", true, probe, true},
		{"NONE", true, none, false},
		{"no health", true, nil, false},
		{"no tend-init", false, probe, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &Engine{}
			if tc.available {
				e.initPath = "/x/tend-init"
			}
			if got := e.wantProbeInit(&CreateOptions{Health: tc.health}); got != tc.want {
				t.Errorf("wantProbeInit = %v, want %v", got, tc.want)
			}
		})
	}
}
