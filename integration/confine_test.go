package integration

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/healthcheck"
	"github.com/tendhq/tend/internal/testimage"
)

// Docker's default capability set as /proc/<pid>/status shows it.
const dockerDefaultCaps = 0x00000000a80425fb

var appImageOnce sync.Once

// importAppImage imports the application test image (TEND_TEST_APP_IMAGE,
// else built into the test root) into the engine's namespace.
func importAppImage(t *testing.T, e *backend.Engine) {
	t.Helper()
	var err error
	appImageOnce.Do(func() {
		p := repoPath(os.Getenv("TEND_TEST_APP_IMAGE"))
		if p == "" {
			p = filepath.Join(testEnv.Root, "app.tar")
			if err = testimage.WriteAppArchiveFile(p, busyboxPath(), testimage.AppRef); err != nil {
				return
			}
		}
		var f *os.File
		if f, err = os.Open(p); err != nil {
			return
		}
		defer f.Close()
		_, err = e.ImportImage(testCtx(t), f)
	})
	if err != nil {
		appImageOnce = sync.Once{}
		t.Fatalf("import the app image: %v (build it: go run ./tools/mkimage -app build/app.tar)", err)
	}
}

// execWith runs opts in ref and returns its stdout and exit code.
func (env *engineEnv) execWith(ref string, opts backend.ExecOptions) (string, int) {
	env.t.Helper()
	var out, errb bytes.Buffer
	opts.Stdout, opts.Stderr = &out, &errb
	x, err := env.e.Exec(testCtx(env.t), ref, opts)
	if err != nil {
		env.t.Fatalf("exec %q in %s: %v", opts.Cmd, ref, err)
	}
	ctx, cancel := context.WithTimeout(testCtx(env.t), 30*time.Second)
	defer cancel()
	code, err := x.Wait(ctx)
	if err != nil {
		env.t.Fatalf("exec %q in %s: wait: %v", opts.Cmd, ref, err)
	}
	return out.String() + errb.String(), code
}

// sh runs a shell command in ref and returns its trimmed output; a
// non-zero exit fails the test.
func (env *engineEnv) sh(ref, cmd string) string {
	env.t.Helper()
	out, code := env.execWith(ref, backend.ExecOptions{Cmd: []string{"sh", "-c", cmd}})
	if code != 0 {
		env.t.Fatalf("exec %q in %s: exit %d: %s", cmd, ref, code, out)
	}
	return strings.TrimSpace(out)
}

// procStatus reads fields of a /proc/<pid>/status inside ref.
func (env *engineEnv) procStatus(ref, pid string) map[string]string {
	env.t.Helper()
	out := env.sh(ref, "cat /proc/"+pid+"/status")
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

func capHex(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		t.Fatalf("capability set %q: %v", s, err)
	}
	return v
}

// countVar counts the lines of env output that set name.
func countVar(env, name string) int {
	n := 0
	for _, l := range strings.Split(env, "\n") {
		if strings.HasPrefix(l, name+"=") {
			n++
		}
	}
	return n
}

// TestConfineAppImageConfig runs the application image as Docker would:
// its USER (with the supplementary group), WORKDIR, ENV, ENTRYPOINT + CMD
// and STOPSIGNAL; -e overrides the image's variables by name; an exec
// inherits the container's user, environment and working directory unless
// told otherwise.
func TestConfineAppImageConfig(t *testing.T) {
	env := newEngineEnv(t, nil)
	importAppImage(t, env.e)
	c := env.run(backend.CreateOptions{Name: testID(t), Image: testimage.AppRef,
		Env: []string{"APP_MODE=run", "EXTRA=1", "APP_MODE=last"}})
	if c.Config.StopSignal != testimage.AppStopSignal {
		t.Errorf("recorded stop signal %q, want the image's %s", c.Config.StopSignal, testimage.AppStopSignal)
	}
	if got := env.sh(c.ID, "id -u"); got != strconv.Itoa(testimage.AppUID) {
		t.Errorf("id -u = %s, want the image's USER app (%d)", got, testimage.AppUID)
	}
	if got, want := env.sh(c.ID, "id -G"), "1000 50"; got != want {
		t.Errorf("id -G = %q, want %q (staff lists app)", got, want)
	}
	if got := env.sh(c.ID, "pwd"); got != testimage.AppWorkdir {
		t.Errorf("pwd = %s, want the image's WORKDIR %s", got, testimage.AppWorkdir)
	}
	e := env.sh(c.ID, "env")
	for _, kv := range []string{"APP_GREETING=hello from the image", "APP_MODE=last", "EXTRA=1", "PATH=" + testimage.DefaultPath} {
		if !strings.Contains("\n"+e+"\n", "\n"+kv+"\n") {
			t.Errorf("env lacks %s:\n%s", kv, e)
		}
	}
	if n := countVar(e, "APP_MODE"); n != 1 {
		t.Errorf("APP_MODE set %d times, want once (last -e wins):\n%s", n, e)
	}
	// PID 1 is the image's CMD run by its ENTRYPOINT.
	if got, want := env.sh(c.ID, "tr '\\0' ' ' </proc/1/cmdline"), strings.Join(testimage.AppCmd, " "); got != want {
		t.Errorf("PID 1 runs %q, want %q", got, want)
	}
	env.waitFor(c.ID, 10*time.Second, "the entrypoint's line", func(*backend.Container) bool {
		return strings.Contains(env.logText(c.ID), "entrypoint: "+strings.Join(testimage.AppCmd, " "))
	})

	// Exec overrides, as docker exec -u/-w/-e.
	if got := env.sh(c.ID, "echo $(id -u) $(pwd) $APP_MODE"); got != "1000 /app last" {
		t.Errorf("exec inherits %q, want user 1000, /app and APP_MODE=last", got)
	}
	out, code := env.execWith(c.ID, backend.ExecOptions{Cmd: []string{"sh", "-c", "echo $(id -u):$(id -g) $(pwd) $APP_MODE; env"},
		User: "root", WorkingDir: "/tmp", Env: []string{"APP_MODE=exec", "APP_MODE=exec2"}})
	if code != 0 || !strings.HasPrefix(out, "0:0 /tmp exec2\n") || countVar(out, "APP_MODE") != 1 {
		t.Errorf("exec -u root -w /tmp -e APP_MODE=exec2: exit %d, output %q", code, out)
	}
	if _, err := env.e.Exec(testCtx(t), c.ID, backend.ExecOptions{Cmd: []string{"true"}, User: "nosuchuser"}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("exec -u nosuchuser: %v, want invalid argument", err)
	}
}

// TestConfineEntrypoint: a command follows the image's ENTRYPOINT; an
// --entrypoint replaces it and drops the CMD; an empty one clears it.
func TestConfineEntrypoint(t *testing.T) {
	env := newEngineEnv(t, nil)
	importAppImage(t, env.e)
	for i, tc := range []struct {
		entrypoint []string
		cmd        []string
		want       string
	}{
		{nil, []string{"echo", "hi"}, "entrypoint: echo hi\nhi\n"},
		{[]string{"/bin/echo"}, []string{"replaced"}, "replaced\n"},
		{[]string{"/bin/echo"}, nil, "\n"},
		{[]string{""}, []string{"echo", "cleared"}, "cleared\n"},
	} {
		c := env.run(backend.CreateOptions{Name: testID(t) + strconv.Itoa(i), Image: testimage.AppRef, Entrypoint: tc.entrypoint, Cmd: tc.cmd})
		env.waitFor(c.ID, 10*time.Second, "exit", func(c *backend.Container) bool { return c.State == backend.StateExited })
		if got := env.logText(c.ID); got != tc.want {
			t.Errorf("--entrypoint %q %q: output %q, want %q", tc.entrypoint, tc.cmd, got, tc.want)
		}
	}
}

// TestConfineUser resolves --user in the image's /etc/passwd and
// /etc/group: name, uid, uid:gid, name:group.
func TestConfineUser(t *testing.T) {
	env := newEngineEnv(t, nil)
	importAppImage(t, env.e)
	for i, tc := range []struct{ user, want string }{
		{"root", "0 0 0"},
		{"app", "1000 1000 1000 50"},
		{"1000", "1000 1000 1000 50"},
		{"4242", "4242 0 0"}, // a uid the image does not know: gid 0, as docker
		{"4242:4343", "4242 4343 4343"},
		{"app:root", "1000 0 0 50"},
		{"nobody", "65534 65534 65534"},
	} {
		c := env.run(backend.CreateOptions{Name: testID(t) + strconv.Itoa(i), Image: testimage.AppRef, User: tc.user,
			Cmd: []string{"sh", "-c", "echo $(id -u) $(id -g) $(id -G)"}})
		env.waitFor(c.ID, 10*time.Second, "exit", func(c *backend.Container) bool { return c.State == backend.StateExited })
		out := strings.TrimSpace(strings.TrimPrefix(env.logText(c.ID), "entrypoint: sh -c echo $(id -u) $(id -g) $(id -G)\n"))
		if out != tc.want {
			t.Errorf("--user %s: uid gid groups %q, want %q", tc.user, out, tc.want)
		}
	}
}

// TestConfineDefaults reads PID 1's /proc status as Docker would show it:
// the default seccomp filter and capabilities, and what --privileged,
// --cap-drop, --cap-add and --security-opt change; execs run under the
// same confinement.
func TestConfineDefaults(t *testing.T) {
	env := newEngineEnv(t, nil)
	importAppImage(t, env.e)
	hostStatus, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var hostCaps uint64
	for _, l := range strings.Split(string(hostStatus), "\n") {
		if v, ok := strings.CutPrefix(l, "CapBnd:"); ok {
			hostCaps = capHex(t, strings.TrimSpace(v))
		}
	}
	for i, tc := range []struct {
		name             string
		opts             backend.CreateOptions
		seccomp, nnp     string
		capEff, capBnd   uint64
		execSeccomp      string
		execCapEff       uint64
		execCapEffIsSame bool
	}{
		{name: "default", seccomp: "2", nnp: "0", capEff: dockerDefaultCaps, capBnd: dockerDefaultCaps},
		{name: "privileged", opts: backend.CreateOptions{Privileged: true}, seccomp: "0", nnp: "0", capEff: hostCaps, capBnd: hostCaps},
		{name: "cap-drop ALL", opts: backend.CreateOptions{CapDrop: []string{"ALL"}}, seccomp: "2", nnp: "0"},
		{name: "cap-add NET_ADMIN", opts: backend.CreateOptions{CapAdd: []string{"net_admin"}}, seccomp: "2", nnp: "0",
			capEff: dockerDefaultCaps | 1<<12, capBnd: dockerDefaultCaps | 1<<12},
		{name: "cap-add ALL", opts: backend.CreateOptions{CapAdd: []string{"ALL"}}, seccomp: "2", nnp: "0", capEff: hostCaps, capBnd: hostCaps},
		{name: "cap-drop ALL cap-add CHOWN", opts: backend.CreateOptions{CapDrop: []string{"ALL"}, CapAdd: []string{"CAP_CHOWN"}}, seccomp: "2", nnp: "0", capEff: 1, capBnd: 1},
		{name: "no-new-privileges", opts: backend.CreateOptions{SecurityOpt: []string{"no-new-privileges"}}, seccomp: "2", nnp: "1", capEff: dockerDefaultCaps, capBnd: dockerDefaultCaps},
		{name: "seccomp unconfined", opts: backend.CreateOptions{SecurityOpt: []string{"seccomp=unconfined"}}, seccomp: "0", nnp: "0", capEff: dockerDefaultCaps, capBnd: dockerDefaultCaps},
		{name: "non-root user", opts: backend.CreateOptions{Image: testimage.AppRef, Cmd: []string{"sleep", "100000"}}, seccomp: "2", nnp: "0", capEff: 0, capBnd: dockerDefaultCaps},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			o.Name = "confine" + strconv.Itoa(i)
			if o.Image == "" {
				o.Image, o.Cmd = testEnv.ImageRef, []string{"sleep", "100000"}
			}
			c := env.run(o)
			st := env.procStatus(c.ID, "1")
			if st["Seccomp"] != tc.seccomp || st["NoNewPrivs"] != tc.nnp || capHex(t, st["CapEff"]) != tc.capEff || capHex(t, st["CapBnd"]) != tc.capBnd {
				t.Errorf("PID 1: Seccomp %s NoNewPrivs %s CapEff %s CapBnd %s; want %s %s %016x %016x",
					st["Seccomp"], st["NoNewPrivs"], st["CapEff"], st["CapBnd"], tc.seccomp, tc.nnp, tc.capEff, tc.capBnd)
			}
			// An exec is confined as PID 1 is.
			self := env.procStatus(c.ID, "self")
			if self["Seccomp"] != tc.seccomp || self["NoNewPrivs"] != tc.nnp || self["CapEff"] != st["CapEff"] || self["CapBnd"] != st["CapBnd"] {
				t.Errorf("exec: Seccomp %s NoNewPrivs %s CapEff %s CapBnd %s; want PID 1's %s %s %s %s",
					self["Seccomp"], self["NoNewPrivs"], self["CapEff"], self["CapBnd"], st["Seccomp"], st["NoNewPrivs"], st["CapEff"], st["CapBnd"])
			}
			if err := env.e.Remove(testCtx(t), c.ID, true); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestConfineReadOnlyTmpfsLimits: --read-only refuses writes to the root
// filesystem, --tmpfs mounts writable space with its size, --ulimit and
// --shm-size reach the container, and the image's STOPSIGNAL stops it.
func TestConfineReadOnlyTmpfsLimits(t *testing.T) {
	env := newEngineEnv(t, nil)
	importAppImage(t, env.e)
	c := env.run(backend.CreateOptions{Name: testID(t), Image: testEnv.ImageRef, Cmd: []string{"sleep", "100000"},
		ReadonlyRootfs: true, Tmpfs: map[string]string{"/run": "size=1m,mode=1777"},
		Ulimits: []backend.Ulimit{{Name: "nofile", Soft: 100, Hard: 200}, {Name: "nproc", Soft: 500, Hard: 600}}, ShmSize: 8 << 20})
	out, code := env.execWith(c.ID, backend.ExecOptions{Cmd: []string{"touch", "/written"}})
	if code == 0 || !strings.Contains(out, "Read-only file system") {
		t.Errorf("write to the read-only rootfs: exit %d, %q; want refused", code, out)
	}
	if got := env.sh(c.ID, "echo ok >/run/x && cat /run/x"); got != "ok" {
		t.Errorf("write to --tmpfs /run: %q", got)
	}
	mounts := env.sh(c.ID, "cat /proc/mounts")
	if !strings.Contains(mounts, "tmpfs /run tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k") {
		t.Errorf("no 1m tmpfs on /run in:\n%s", mounts)
	}
	if !strings.Contains(mounts, "/dev/shm tmpfs") || !strings.Contains(mounts, "size=8192k") {
		t.Errorf("no 8m /dev/shm in:\n%s", mounts)
	}
	if lim := env.sh(c.ID, "grep 'Max open files' /proc/1/limits"); !reflect.DeepEqual(strings.Fields(lim)[3:5], []string{"100", "200"}) {
		t.Errorf("/proc/1/limits: %q, want 100 and 200 open files", lim)
	}
	// runc, a Go program, raises an exec's soft NOFILE to its hard limit
	// (docker exec shows the same): an exec is checked on another limit.
	for _, pid := range []string{"1", "self"} {
		if lim := env.sh(c.ID, "grep 'Max processes' /proc/"+pid+"/limits"); !reflect.DeepEqual(strings.Fields(lim)[2:4], []string{"500", "600"}) {
			t.Errorf("/proc/%s/limits: %q, want 500 and 600 processes", pid, lim)
		}
	}

	// The image's STOPSIGNAL (SIGUSR1), which the command traps; a SIGTERM
	// would be ignored by PID 1 and end in a SIGKILL (137).
	s := env.run(backend.CreateOptions{Name: testID(t) + "stop", Image: testimage.AppRef,
		Cmd: []string{"sh", "-c", "trap 'echo stopped by USR1; exit 3' USR1; echo ready; while :; do sleep 0.1; done"}})
	env.waitFor(s.ID, 10*time.Second, "ready", func(*backend.Container) bool { return strings.Contains(env.logText(s.ID), "ready") })
	if err := env.e.Stop(testCtx(t), s.ID, nil); err != nil {
		t.Fatal(err)
	}
	if r := env.inspect(s.ID); r.ExitCode != 3 || !strings.Contains(env.logText(s.ID), "stopped by USR1") {
		t.Errorf("stop: exit %d, log %q; want 3 after the image's SIGUSR1", r.ExitCode, env.logText(s.ID))
	}
}

// TestConfineBadInput: each bad option is an invalid-argument error before
// anything is created, in the engine or in containerd.
func TestConfineBadInput(t *testing.T) {
	env := newEngineEnv(t, nil)
	importAppImage(t, env.e)
	dir := t.TempDir()
	badProfile := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(badProfile, []byte(`{"syscalls": []}`), 0o600); err != nil {
		t.Fatal(err)
	}
	minusTwo := -2
	raw := rawClient(t)
	before, err := raw.Containers(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts backend.CreateOptions
		msg  string
	}{
		{"unknown user", backend.CreateOptions{User: "nosuchuser"}, "no such user"},
		{"unknown group", backend.CreateOptions{User: "app:nosuchgroup"}, "no such user or group"},
		{"unknown capability", backend.CreateOptions{CapAdd: []string{"CAP_NOPE"}}, "unknown capability"},
		{"unreadable seccomp file", backend.CreateOptions{SecurityOpt: []string{"seccomp=" + filepath.Join(dir, "missing.json")}}, "--security-opt seccomp="},
		{"seccomp profile without defaultAction", backend.CreateOptions{SecurityOpt: []string{"seccomp=" + badProfile}}, "defaultAction"},
		{"unknown security opt", backend.CreateOptions{SecurityOpt: []string{"label=disable"}}, "--security-opt"},
		{"bad ulimit", backend.CreateOptions{Ulimits: []backend.Ulimit{{Name: "nofile", Soft: 10, Hard: 5}}}, "soft limit is above"},
		{"unknown ulimit", backend.CreateOptions{Ulimits: []backend.Ulimit{{Name: "bogus", Soft: 1, Hard: 1}}}, "unknown limit"},
		{"negative shm-size", backend.CreateOptions{ShmSize: -1}, "--shm-size"},
		{"huge shm-size", backend.CreateOptions{ShmSize: 1 << 50}, "--shm-size"},
		{"relative tmpfs", backend.CreateOptions{Tmpfs: map[string]string{"run": ""}}, "--tmpfs"},
		{"bad tmpfs option", backend.CreateOptions{Tmpfs: map[string]string{"/run": "size=lots"}}, "--tmpfs"},
		{"bad stop signal", backend.CreateOptions{StopSignal: "NOPE"}, "stop signal"},
		{"bad stop timeout", backend.CreateOptions{StopTimeout: &minusTwo}, "--stop-timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			o.Name, o.Image = "bad", testimage.AppRef
			_, err := env.e.Create(testCtx(t), o)
			if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Create: %v; want an invalid argument saying %q", err, tc.msg)
			}
		})
	}
	list, err := env.e.List(testCtx(t), backend.ListOptions{All: true})
	if err != nil || len(list) != 0 {
		t.Errorf("containers after refused creates: %d, %v; want none", len(list), err)
	}
	after, err := raw.Containers(testCtx(t))
	if err != nil || len(after) != len(before) {
		t.Errorf("containerd has %d containers after refused creates, %d before (%v)", len(after), len(before), err)
	}
}

// mountOptions maps the mount points of a /proc/mounts text to their
// options (the last mount of a point wins, as it is the one seen).
func mountOptions(mounts string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(mounts, "\n") {
		if f := strings.Fields(l); len(f) >= 4 {
			m[f[1]] = f[2] + " " + f[3]
		}
	}
	return m
}

// TestConfineMaskedPathsDevices: a container sees Docker's masked paths
// (/proc/keys is /dev/null, /sys/firmware an empty read-only tmpfs; this
// kernel has no /proc/kcore),
// read-only /proc/sys and /sys, and only the default devices; --privileged
// lifts the masks, mounts them read-write and gives the host's devices.
func TestConfineMaskedPathsDevices(t *testing.T) {
	env := newEngineEnv(t, nil)
	hostDev := ""
	for _, d := range []string{"/dev/kmsg", "/dev/loop-control", "/dev/net/tun", "/dev/mem"} {
		if fi, err := os.Stat(d); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			hostDev = d
			break
		}
	}
	for _, privileged := range []bool{false, true} {
		c := env.run(backend.CreateOptions{Name: testID(t) + strconv.FormatBool(privileged), Image: testEnv.ImageRef,
			Cmd: []string{"sleep", "100000"}, Privileged: privileged})
		keys := env.sh(c.ID, "ls -l /proc/keys")
		mounts := mountOptions(env.sh(c.ID, "cat /proc/mounts"))
		masked := strings.HasPrefix(keys, "c") && strings.HasPrefix(mounts["/sys/firmware"], "tmpfs ro,")
		if masked == privileged {
			t.Errorf("privileged %v: /proc/keys %q, /sys/firmware %q; want masked only when not privileged", privileged, keys, mounts["/sys/firmware"])
		}
		for _, p := range []string{"/proc/sys", "/sys"} {
			ro := strings.Contains(" "+mounts[p]+",", " ro,")
			if ro == privileged {
				t.Errorf("privileged %v: %s mounted %q; want read-only only when not privileged", privileged, p, mounts[p])
			}
		}
		if hostDev != "" {
			if _, code := env.execWith(c.ID, backend.ExecOptions{Cmd: []string{"test", "-c", hostDev}}); (code == 0) != privileged {
				t.Errorf("privileged %v: test -c %s exits %d; want the host device only when privileged", privileged, hostDev, code)
			}
		}
	}
}

// TestConfineProbes: health probes run under the container's user and
// confinement, through tend-init and as containerd execs alike.
func TestConfineProbes(t *testing.T) {
	env := newEngineEnv(t, nil)
	importAppImage(t, env.e)
	probe := &healthcheck.Config{Test: []string{"CMD-SHELL", "grep -E '^(Uid|Seccomp|NoNewPrivs|CapEff|CapBnd):' /proc/self/status"},
		Interval: 200 * time.Millisecond, Timeout: 10 * time.Second, Retries: 1}
	dflt := strconv.FormatUint(dockerDefaultCaps, 16)
	for i, tc := range []struct {
		name string
		opts backend.CreateOptions
		want map[string]string
	}{
		{"root", backend.CreateOptions{Image: testEnv.ImageRef, Cmd: []string{"sleep", "100000"}},
			map[string]string{"Uid": "0", "Seccomp": "2", "NoNewPrivs": "0", "CapEff": dflt, "CapBnd": dflt}},
		{"image user", backend.CreateOptions{Image: testimage.AppRef},
			map[string]string{"Uid": "1000", "Seccomp": "2", "NoNewPrivs": "0", "CapEff": "0", "CapBnd": dflt}},
		{"narrowed", backend.CreateOptions{Image: testEnv.ImageRef, Cmd: []string{"sleep", "100000"},
			CapDrop: []string{"ALL"}, CapAdd: []string{"CHOWN"}, SecurityOpt: []string{"no-new-privileges"}},
			map[string]string{"Uid": "0", "Seccomp": "2", "NoNewPrivs": "1", "CapEff": "1", "CapBnd": "1"}},
	} {
		for _, init := range []bool{true, false} {
			t.Run(tc.name+" init="+strconv.FormatBool(init), func(t *testing.T) {
				o := tc.opts
				o.Name, o.Health, o.Init = "probe"+strconv.Itoa(i)+strconv.FormatBool(init), probe, &init
				c := env.run(o)
				r := env.waitFor(c.ID, 30*time.Second, "a probe", func(c *backend.Container) bool {
					return c.Health != nil && len(c.Health.Log) > 0
				})
				res := r.Health.Log[0]
				got := map[string]string{}
				for _, l := range strings.Split(res.Output, "\n") {
					if k, v, ok := strings.Cut(l, ":"); ok {
						got[k] = strings.Fields(v)[0]
					}
				}
				for k, v := range tc.want {
					if k == "CapEff" || k == "CapBnd" {
						n, err := strconv.ParseUint(got[k], 16, 64)
						if err != nil || strconv.FormatUint(n, 16) != v {
							t.Errorf("probe %s %q, want %s", k, got[k], v)
						}
					} else if got[k] != v {
						t.Errorf("probe %s %q, want %s", k, got[k], v)
					}
				}
				if res.ExitCode != 0 || t.Failed() {
					t.Logf("probe exit %d, output:\n%s", res.ExitCode, res.Output)
				}
				if err := env.e.Remove(testCtx(t), c.ID, true); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}
