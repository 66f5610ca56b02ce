package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tendhq/tend/internal/testutil"
)

// dockerCLIs lists the docker CLIs to drive: TEND_DOCKER_CLI, else
// Debian's docker.io client (/usr/bin/docker, which scripts/setup.sh
// installs; API 1.41) and whatever other docker is first in PATH.
func dockerCLIs(t testing.TB) []string {
	if p := os.Getenv("TEND_DOCKER_CLI"); p != "" {
		return []string{p}
	}
	var out []string
	seen := map[string]bool{}
	for _, p := range []string{"/usr/bin/docker", "docker"} {
		path, err := exec.LookPath(p)
		if err != nil {
			continue
		}
		if real, err := filepath.EvalSymlinks(path); err == nil && !seen[real] {
			seen[real] = true
			out = append(out, path)
		}
	}
	if len(out) == 0 {
		t.Skip("no docker CLI: run scripts/setup.sh (it installs Debian's docker.io client) or set TEND_DOCKER_CLI")
	}
	return out
}

// dockerCLI runs one docker CLI against an engine's Docker socket.
type dockerCLI struct {
	bin  string
	env  []string
	sock string
}

func newDockerCLI(t testing.TB, bin, sock string) *dockerCLI {
	cfg := t.TempDir()
	env := []string{"DOCKER_HOST=unix://" + sock, "DOCKER_CONFIG=" + cfg, "HOME=" + cfg, "PATH=" + os.Getenv("PATH"), "TERM=xterm"}
	return &dockerCLI{bin: bin, env: env, sock: sock}
}

func (c *dockerCLI) run(t testing.TB, stdin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = c.env
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("docker %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

func (c *dockerCLI) must(t testing.TB, args ...string) string {
	t.Helper()
	out, errs, code := c.run(t, "", args...)
	if code != 0 {
		t.Fatalf("docker %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// expect runs docker and checks its exit code and that its output (stdout
// and stderr) holds want.
func (c *dockerCLI) expect(t testing.TB, code int, want string, args ...string) {
	t.Helper()
	out, errs, got := c.run(t, "", args...)
	if got != code || !strings.Contains(out+errs, want) {
		t.Errorf("docker %s: exit %d, stdout %q, stderr %q; want exit %d and output containing %q", strings.Join(args, " "), got, out, errs, code, want)
	}
}

// TestDockerCLI runs a docker CLI scenario against the engine's Docker API.
func TestDockerCLI(t *testing.T) {
	clis := dockerCLIs(t)
	d, _ := startDockerEngine(t, "dcli")
	for _, bin := range clis {
		out, _ := exec.Command(bin, "--version").Output()
		name := strings.TrimSpace(strings.TrimPrefix(strings.SplitN(string(out), ",", 2)[0], "Docker version "))
		t.Run("docker-"+name, func(t *testing.T) { testDockerCLI(t, d, newDockerCLI(t, bin, d.dockerSocket())) })
	}
}

func testDockerCLI(t *testing.T, d *engineDaemon, c *dockerCLI) {
	begin := time.Now()
	defer func() {
		out, _, _ := c.run(t, "", "ps", "-aq")
		if ids := strings.Fields(out); len(ids) > 0 {
			c.run(t, "", append([]string{"rm", "-f"}, ids...)...)
		}
	}()
	if v := strings.TrimSpace(c.must(t, "version", "--format", "{{.Server.APIVersion}} {{.Server.MinAPIVersion}}")); v != "1.56 1.41" {
		t.Errorf("docker version: server API %q, want 1.56 1.41", v)
	}
	if out := c.must(t, "image", "load", "-i", engineImage(t)); !strings.Contains(out, "Loaded image: busybox:latest") {
		t.Errorf("image load: %q", out)
	}
	if out := c.must(t, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(out, "busybox:latest") {
		t.Errorf("image ls: %q", out)
	}

	// docker run's exit codes: the container's, 125, 126, 127.
	out, errs, code := c.run(t, "", "run", "--rm", "busybox", "sh", "-c", "echo hi; echo oops >&2; exit 3")
	if code != 3 || out != "hi\n" || errs != "oops\n" {
		t.Errorf("run --rm: exit %d, stdout %q, stderr %q; want 3, hi, oops", code, out, errs)
	}
	if out := c.must(t, "ps", "-aq"); out != "" {
		t.Errorf("run --rm left %q", out)
	}
	c.expect(t, 127, "", "run", "--rm", "busybox", "nosuchcommand")
	c.expect(t, 126, "", "run", "--rm", "busybox", "/etc")
	c.expect(t, 125, "HostConfig.PidMode", "run", "--rm", "--pid", "host", "busybox", "true")
	c.expect(t, 125, "", "run", "--rm", "nosuchimage")
	if out := c.must(t, "ps", "-aq"); out != "" {
		t.Errorf("failed runs left %q", out)
	}

	// A service with a health check and a crasher with a restart policy.
	c.must(t, "run", "-d", "--name", "web", "--restart", "on-failure:3", "--health-cmd", "true", "--health-interval", "1s", "busybox", "sleep", "1000")
	c.must(t, "run", "-d", "--name", "crasher", "--restart", "on-failure:3", "busybox", "sh", "-c", "exit 2")
	enginePoll(t, 3*time.Minute, "web to be healthy in docker ps", func() bool {
		out, _, _ := c.run(t, "", "ps", "--format", "{{.Names}}|{{.Status}}|{{.Image}}")
		return regexp.MustCompile(`(?m)^web\|Up .* \(healthy\)\|busybox:latest$`).MatchString(out)
	})
	if out := strings.TrimSpace(c.must(t, "inspect", "--format", "{{.State.Health.Status}} {{.State.Health.FailingStreak}} {{.RestartCount}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}} {{.State.Running}}", "web")); out != "healthy 0 0 on-failure:3 true" {
		t.Errorf("inspect web: %q", out)
	}
	enginePoll(t, 3*time.Minute, "crasher to use its three restarts", func() bool {
		out, _, _ := c.run(t, "", "inspect", "--format", "{{.RestartCount}} {{.State.Status}}", "crasher")
		return strings.TrimSpace(out) == "3 exited"
	})
	if out := strings.TrimSpace(c.must(t, "wait", "crasher")); out != "2" {
		t.Errorf("wait crasher: %q, want 2", out)
	}
	if out := c.must(t, "ps", "-a", "--filter", "status=exited", "--format", "{{.Names}} {{.Status}}"); !regexp.MustCompile(`crasher Exited \(2\)`).MatchString(out) {
		t.Errorf("ps --filter status=exited: %q", out)
	}

	// logs -f follows until the container stops.
	c.must(t, "run", "-d", "--name", "talker", "busybox", "sh", "-c", "echo a; sleep 0.3; echo b >&2; sleep 0.3; echo c")
	out, errs, code = c.run(t, "", "logs", "-f", "talker")
	if code != 0 || out != "a\nc\n" || errs != "b\n" {
		t.Errorf("logs -f: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if out := c.must(t, "logs", "--tail", "1", "talker"); out != "c\n" {
		t.Errorf("logs --tail 1: %q", out)
	}

	// exec: exit codes, and -it through a terminal.
	c.expect(t, 7, "", "exec", "web", "sh", "-c", "exit 7")
	c.expect(t, 127, "", "exec", "web", "nosuchcommand")
	if out := c.must(t, "exec", "web", "echo", "from-exec"); out != "from-exec\n" {
		t.Errorf("exec echo: %q", out)
	}
	testDockerTTY(t, c, 5, "exec", "-it", "web", "sh")
	testDockerTTY(t, c, 6, "run", "-it", "--rm", "--name", "tty", "busybox", "sh")

	// attach: stdin in, output out, the container's exit code.
	c.must(t, "run", "-d", "-i", "--name", "att", "busybox", "sh", "-c", "read x; echo got $x; exit 9")
	out, errs, code = c.run(t, "hello\n", "attach", "att")
	if code != 9 || out != "got hello\n" {
		t.Errorf("attach: exit %d, stdout %q, stderr %q; want 9 and got hello", code, out, errs)
	}

	if out := c.must(t, "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}", "web"); !regexp.MustCompile(`^web [0-9.]+[KMG]iB / [0-9.]+[KMG]iB [1-9]`).MatchString(out) {
		t.Errorf("stats --no-stream: %q", out)
	}
	if out := c.must(t, "top", "web"); !strings.Contains(out, "sleep 1000") {
		t.Errorf("top: %q", out)
	}

	c.must(t, "pause", "web")
	if out := c.must(t, "ps", "--format", "{{.Names}} {{.Status}}", "--filter", "name=web"); !strings.Contains(out, "(Paused)") {
		t.Errorf("ps of a paused container: %q", out)
	}
	c.must(t, "unpause", "web")
	if out := strings.TrimSpace(c.must(t, "stop", "-t", "1", "web")); out != "web" {
		t.Errorf("stop: %q", out)
	}
	if out := strings.TrimSpace(c.must(t, "wait", "web")); out != "143" && out != "137" {
		t.Errorf("wait web after stop: %q", out)
	}

	now := strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10)
	since := strconv.FormatInt(begin.Unix(), 10)
	out = c.must(t, "events", "--since", since, "--until", now, "--filter", "container=crasher", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.exitCode}}")
	if strings.Count(out, "container die 2") != 4 || !strings.Contains(out, "container create") {
		t.Errorf("events of crasher: %q, want create and four die with exitCode 2", out)
	}
	out = c.must(t, "events", "--since", since, "--until", now, "--filter", "event=health_status", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	if !strings.Contains(out, "health_status: healthy web") {
		t.Errorf("health events: %q", out)
	}
	out = c.must(t, "events", "--since", since, "--until", now, "--filter", "event=exec_die", "--format", "{{.Action}} {{.Actor.Attributes.exitCode}}")
	if !strings.Contains(out, "exec_die 7") {
		t.Errorf("exec_die events: %q", out)
	}

	c.expect(t, 1, "No such container", "rm", "nosuch")
	c.must(t, "rm", "-f", "web", "crasher", "talker", "att")
	if out := c.must(t, "ps", "-aq"); out != "" {
		t.Errorf("rm -f left %q", out)
	}

	// image tag, save, rm and load back.
	c.must(t, "tag", "busybox", "mybox:1")
	archive := filepath.Join(t.TempDir(), "x.tar")
	c.must(t, "image", "save", "-o", archive, "mybox:1")
	c.must(t, "image", "rm", "mybox:1")
	if out := c.must(t, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"); strings.Contains(out, "mybox") {
		t.Errorf("image ls after rm: %q", out)
	}
	if out := c.must(t, "image", "load", "-i", archive); !strings.Contains(out, "mybox:1") {
		t.Errorf("image load of the saved archive: %q", out)
	}
	if out := c.must(t, "run", "--rm", "mybox:1", "echo", "from-mybox"); out != "from-mybox\n" {
		t.Errorf("run from the loaded image: %q", out)
	}
	c.must(t, "image", "rm", "mybox:1")
	testDockerCLIFiles(t, c)
}

// testDockerTTY runs docker (exec -it or run -it with sh) on a terminal,
// checks the terminal's size and input reach the shell, and exits with
// code.
func testDockerTTY(t *testing.T, c *dockerCLI, code int, args ...string) {
	t.Helper()
	master, slaveName, err := engineOpenPTY()
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	defer master.Close()
	slave, err := os.OpenFile(slaveName, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 100}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(c.bin, args...)
	cmd.Env = c.env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	defer func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	var out testutil.Buffer
	changed := make(chan struct{}, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			if n > 0 {
				out.Write(buf[:n])
				select {
				case changed <- struct{}{}:
				default:
				}
			}
			if err != nil {
				return
			}
		}
	}()
	expect := func(re string) {
		t.Helper()
		r := regexp.MustCompile(re)
		deadline := time.After(30 * time.Second)
		for !r.MatchString(out.String()) {
			select {
			case <-changed:
			case <-deadline:
				t.Fatalf("docker %v: the terminal never showed %q; it shows:\n%s", args, re, out.String())
			}
		}
	}
	send := func(s string) {
		if _, err := master.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	send("echo $((6*7))X\r")
	expect(`42X`)
	// The CLI sends the size after the start: ask until it arrived.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "40 100") {
		if time.Now().After(deadline) {
			t.Fatalf("docker %v: the terminal size never reached the shell:\n%s", args, out.String())
		}
		send("stty size\r")
		select {
		case <-changed:
		case <-time.After(time.Second):
		}
	}
	send(fmt.Sprintf("exit %d\r", code))
	select {
	case <-exited:
		if ee, ok := waitErr.(*exec.ExitError); !ok || ee.ExitCode() != code {
			t.Errorf("docker %v: %v, want exit %d\n%s", args, waitErr, code, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("docker %v did not exit after `exit %d`; the terminal shows:\n%s", args, code, out.String())
	}
}
