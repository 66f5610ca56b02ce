package integration

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/apparmor"

	"github.com/tendhq/tend/internal/testimage"
)

// appArchive returns the application test image archive:
// TEND_TEST_APP_IMAGE or one built into a temporary directory.
func appArchive(t *testing.T) string {
	t.Helper()
	if p := repoPath(os.Getenv("TEND_TEST_APP_IMAGE")); p != "" {
		return p
	}
	p := filepath.Join(t.TempDir(), "app.tar")
	if err := testimage.WriteAppArchiveFile(p, busyboxPath(), testimage.AppRef); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEngineConfineCLI runs the application image through the CLI and the
// API of a real daemon as a docker user would: an unknown user refused
// before anything is created (exit 125, 400), --entrypoint "", --env-file
// over the image's ENV and -e over both, exec inheriting the image's user
// and WORKDIR unless -u/-w/-e say otherwise, exec -d, a read-only bind, a
// named volume written by the image's non-root user surviving rm and a
// daemon restart, a seccomp profile file and seccomp=unconfined,
// --read-only with and without --tmpfs /tmp, and the daemon's one line
// when the host has no AppArmor.
func TestEngineConfineCLI(t *testing.T) {
	root, err := os.MkdirTemp(testEnv.Root, "engconf-")
	if err != nil {
		t.Fatal(err)
	}
	ns := testEnv.Namespace + "-confine"
	d := startEngine(t, root, ns)
	t.Cleanup(func() { cleanupEngine(t, d) })
	d.must(t, "image", "import", appArchive(t))
	img := testimage.AppRef

	if !apparmor.HostSupports() && !strings.Contains(d.logs.String(), "AppArmor is not enabled on this host") {
		t.Errorf("no AppArmor on this host and no line in the daemon's log saying so:\n%s", d.logs.String())
	}

	t.Run("UnknownUser", func(t *testing.T) {
		vols, ctrs := d.volumeNames(t), d.must(t, "ps", "-aq")
		d.expectFail(t, 125, "no such user", "run", "--rm", "-u", "nosuchuser", "-v", "newvol:/x", img, "true")
		d.expectFail(t, 125, "no such user or group", "create", "--user", "app:nosuchgroup", img)
		if st, msg := d.api(t, "POST", "/v1/containers", `{"image":"`+img+`","user":"nosuchuser"}`); st != http.StatusBadRequest || !strings.Contains(msg, "no such user") {
			t.Errorf("POST /v1/containers with an unknown user: %d %q, want 400", st, msg)
		}
		if after := d.volumeNames(t); !slices.Equal(after, vols) {
			t.Errorf("volumes %v after the refusals, before %v", after, vols)
		}
		if after := d.must(t, "ps", "-aq"); after != ctrs {
			t.Errorf("containers %q after the refusals, before %q", after, ctrs)
		}
	})

	t.Run("Entrypoint", func(t *testing.T) {
		if out := d.must(t, "run", "--rm", img, "echo", "hi"); out != "entrypoint: echo hi\nhi\n" {
			t.Errorf("a command after the image's ENTRYPOINT: %q", out)
		}
		if out := d.must(t, "run", "--rm", "--entrypoint", "", img, "echo", "cleared"); out != "cleared\n" {
			t.Errorf("--entrypoint \"\": %q", out)
		}
	})

	t.Run("ExecVolumeBindRestart", func(t *testing.T) {
		dir := t.TempDir()
		envFile := filepath.Join(dir, "app.env")
		if err := os.WriteFile(envFile, []byte("# over the image's ENV, under -e\nAPP_MODE=file\nAPP_GREETING=from the file\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		host := filepath.Join(dir, "host")
		if err := os.Mkdir(host, 0o755); err != nil {
			t.Fatal(err)
		}
		d.must(t, "run", "-d", "--name", "app", "--env-file", envFile, "-e", "APP_MODE=flag",
			"-v", "appdata:/data", "-v", host+":/h:ro", img)
		if out := d.must(t, "exec", "app", "sh", "-c", "echo $(id -u) $(pwd) $APP_MODE $APP_GREETING"); out != "1000 /app flag from the file\n" {
			t.Errorf("exec sees %q, want the image's user and WORKDIR, -e over --env-file over the image's ENV", out)
		}
		if out := d.must(t, "exec", "-u", "root", "-w", "/tmp", "-e", "APP_MODE=exec", "app", "sh", "-c", "echo $(id -u) $(pwd) $APP_MODE"); out != "0 /tmp exec\n" {
			t.Errorf("exec -u root -w /tmp -e APP_MODE=exec sees %q", out)
		}
		t.Setenv("TEND_TEST_EXEC_VAR", "from the cli")
		if out := d.must(t, "exec", "-e", "TEND_TEST_EXEC_VAR", "app", "sh", "-c", "echo $TEND_TEST_EXEC_VAR"); out != "from the cli\n" {
			t.Errorf("exec -e NAME (the CLI's value) sees %q", out)
		}
		// docker exec fails such an exec's start: exit 126.
		if _, errs, code := d.run(t, nil, "exec", "-u", "nosuchuser", "app", "true"); code != 126 || !strings.Contains(errs, "no such user") {
			t.Errorf("exec -u nosuchuser: exit %d, stderr %q; want 126 and the reason", code, errs)
		}
		d.must(t, "exec", "-d", "app", "sh", "-c", "sleep 0.2; echo detached > /data/d")
		enginePoll(t, 20*time.Second, "the detached exec's file", func() bool {
			out, _, code := d.run(t, nil, "exec", "app", "cat", "/data/d")
			return code == 0 && out == "detached\n"
		})
		d.must(t, "exec", "app", "sh", "-c", "echo persisted > /data/f")
		if _, errs, code := d.run(t, nil, "exec", "app", "touch", "/h/new"); code == 0 || !strings.Contains(errs, "Read-only file system") {
			t.Errorf("write to a :ro bind: exit %d, stderr %q; want refused", code, errs)
		}

		d.must(t, "rm", "-f", "app")
		if err := d.signal(t, syscall.SIGTERM); err != nil {
			t.Fatalf("daemon exit after SIGTERM: %v\n%s", err, d.logs.String())
		}
		d = startEngine(t, root, ns)
		if out := d.must(t, "run", "--rm", "-v", "appdata:/data", img, "cat", "/data/f", "/data/d"); !strings.HasSuffix(out, "\npersisted\ndetached\n") {
			t.Errorf("after rm and a daemon restart the volume holds %q", out)
		}
		d.must(t, "volume", "rm", "appdata")
	})

	t.Run("Seccomp", func(t *testing.T) {
		profile := filepath.Join(t.TempDir(), "nomkdir.json")
		if err := os.WriteFile(profile, []byte(`{"defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}`), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ opt, want string }{
			{"seccomp=" + profile, "Seccomp:\t2\nmkdir: can't create directory '/tmp/x': Operation not permitted\n"},
			{"seccomp=unconfined", "Seccomp:\t0\nmade\n"},
		} {
			out, errs, _ := d.run(t, nil, "run", "--rm", "--security-opt", tc.opt, "--entrypoint", "", img,
				"sh", "-c", "grep ^Seccomp: /proc/self/status; mkdir /tmp/x && echo made")
			if out+errs != tc.want {
				t.Errorf("--security-opt %s: %q, want %q", tc.opt, out+errs, tc.want)
			}
		}
	})

	t.Run("ReadOnly", func(t *testing.T) {
		if _, errs, code := d.run(t, nil, "run", "--rm", "--read-only", img, "touch", "/tmp/x"); code == 0 || !strings.Contains(errs, "Read-only file system") {
			t.Errorf("--read-only, write to /tmp: exit %d, stderr %q; want refused", code, errs)
		}
		d.must(t, "run", "--rm", "--read-only", "--tmpfs", "/tmp", img, "touch", "/tmp/x")
	})
}
