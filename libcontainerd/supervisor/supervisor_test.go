package supervisor

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/internal/testutil"
)

func requireContainerd(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("supervisor tests run a real containerd and need root: run as root (e.g. via scripts/test.sh)")
	}
	if _, err := exec.LookPath("containerd"); err != nil {
		t.Skip("no containerd binary in PATH: install containerd (scripts/setup.sh does)")
	}
}

// shortRoot returns a private dir short enough for unix socket paths.
func shortRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "tend-sup-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func serving(t *testing.T, addr string) {
	t.Helper()
	c, err := client.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Version(ctx); err != nil {
		t.Fatalf("containerd on %s does not serve: %v", addr, err)
	}
}

func alive(pid int) bool {
	_, err := os.Stat(filepath.Join("/proc", itoa(pid)))
	if err != nil {
		return false
	}
	b, _ := os.ReadFile(filepath.Join("/proc", itoa(pid), "stat"))
	// A zombie is dead for our purposes.
	return !strings.Contains(string(b), ") Z ")
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestConfigValidation(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		cfg  Config
		want error
	}{
		{"no root", Config{}, errdefs.ErrInvalidArgument},
		{"root too long", Config{Root: "/tmp/" + strings.Repeat("x", 100)}, errdefs.ErrInvalidArgument},
		{"no binary", Config{Root: t.TempDir(), Binary: "/nonexistent/containerd"}, errdefs.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Start(ctx, tc.cfg)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Start(%+v) = %v, want %v", tc.cfg, err, tc.want)
			}
		})
	}
}

func TestConfigTOML(t *testing.T) {
	s := configTOML("/tmp/r", "/tmp/r/containerd.sock")
	for _, want := range []string{
		"version = 2\n",
		`root = "/tmp/r/root"`,
		`state = "/tmp/r/state"`,
		`address = "/tmp/r/containerd.sock"`,
		`address = "/tmp/r/containerd.sock.ttrpc"`,
		`"io.containerd.grpc.v1.cri"`,
		`"io.containerd.cri.v1.runtime"`,
		"[debug]\n  address = \"\"",
		"[metrics]\n  address = \"\"",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("config.toml lacks %q:\n%s", want, s)
		}
	}
}

func TestStartFailureQuotesLog(t *testing.T) {
	requireContainerd(t)
	root := shortRoot(t)
	// An invalid log level makes containerd exit at once.
	_, err := Start(context.Background(), Config{Root: root, LogLevel: "nonsense"})
	if err == nil {
		t.Fatal("Start with an invalid log level succeeded")
	}
	if !errdefs.IsUnavailable(err) || !strings.Contains(err.Error(), "nonsense") {
		t.Fatalf("error should be Unavailable and quote containerd's output: %v", err)
	}
}

func TestStartStopRestartKill(t *testing.T) {
	requireContainerd(t)
	root := shortRoot(t)
	ctx := context.Background()
	d, err := Start(ctx, Config{Root: root, Supervise: true, LogLevel: "debug"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop(ctx)
	if d.Address() != filepath.Join(root, "containerd.sock") {
		t.Fatalf("Address() = %q", d.Address())
	}
	serving(t, d.Address())
	for _, name := range []string{"config.toml", "containerd.log", "root", "state"} {
		st, err := os.Stat(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "config.toml" || name == "containerd.log" {
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s mode %v, want 0600", name, st.Mode().Perm())
			}
		}
	}
	if st, _ := os.Stat(root); st.Mode().Perm() != 0o700 {
		t.Errorf("root mode %v, want 0700", st.Mode().Perm())
	}

	// Restart: a new process that serves.
	pid1 := d.Pid()
	if err := d.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	pid2 := d.Pid()
	if pid2 == pid1 || alive(pid1) {
		t.Fatalf("Restart: pid %d -> %d, old alive=%v", pid1, pid2, alive(pid1))
	}
	serving(t, d.Address())

	// Kill with Supervise: the supervisor brings it back.
	if err := d.Kill(); err != nil {
		t.Fatal(err)
	}
	if alive(pid2) {
		t.Fatalf("pid %d alive after Kill", pid2)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if pid := d.Pid(); pid != pid2 && alive(pid) {
			c, err := client.New(d.Address())
			if err == nil {
				cctx, cancel := context.WithTimeout(ctx, time.Second)
				_, err = c.Version(cctx)
				cancel()
				c.Close()
				if err == nil {
					break
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd not restarted after Kill; log:\n%s", d.Tail())
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-d.Done():
			t.Fatal("daemon stopped")
		}
	}

	pid3 := d.Pid()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := d.Stop(sctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if alive(pid3) {
		t.Fatalf("pid %d alive after Stop", pid3)
	}
	if err := d.Restart(ctx); !errors.Is(err, ErrStopped) {
		t.Fatalf("Restart after Stop = %v, want ErrStopped", err)
	}
	if err := d.Kill(); !errors.Is(err, ErrStopped) {
		t.Fatalf("Kill after Stop = %v, want ErrStopped", err)
	}
	if err := d.Stop(ctx); err != nil {
		t.Fatalf("second Stop = %v", err)
	}
}

func TestKillUnsupervisedStaysDown(t *testing.T) {
	requireContainerd(t)
	root := shortRoot(t)
	ctx := context.Background()
	var out testutil.Buffer
	d, err := Start(ctx, Config{Root: root, Output: &out, ExtraPath: []string{"/nonexistent-tend"}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop(ctx)
	pid := d.Pid()
	env, err := os.ReadFile(filepath.Join("/proc", itoa(pid), "environ"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(env, []byte("PATH=/nonexistent-tend:")) {
		t.Errorf("ExtraPath not prepended to containerd's PATH")
	}
	if err := d.Kill(); err != nil {
		t.Fatal(err)
	}
	if alive(pid) || d.Pid() != pid {
		t.Fatalf("after Kill without Supervise: pid %d alive=%v, Pid()=%d", pid, alive(pid), d.Pid())
	}
	if err := d.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if d.Pid() == pid {
		t.Fatal("Restart after Kill did not start a new containerd")
	}
	serving(t, d.Address())
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "containerd successfully booted") && !strings.Contains(out.String(), "serving") {
		t.Errorf("Output did not receive containerd's log: %q", out.String())
	}
}
