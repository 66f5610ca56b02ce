package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tendhq/tend/internal/testutil"
)

// testDockerCLIFiles is the docker CLI scenario's cp, diff, export, rename
// and update steps, and detaching from attach and exec -it with the detach
// keys.
func testDockerCLIFiles(t *testing.T, c *dockerCLI) {
	dir := t.TempDir()
	host := filepath.Join(dir, "host.txt")
	if err := os.WriteFile(host, []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.must(t, "run", "-d", "--name", "files", "busybox", "sleep", "1000")
	c.must(t, "cp", host, "files:/tmp/")
	c.must(t, "cp", host, "files:/tmp/renamed.txt")
	if out := c.must(t, "exec", "files", "cat", "/tmp/host.txt", "/tmp/renamed.txt"); out != "from the host\nfrom the host\n" {
		t.Errorf("cp into the container: %q", out)
	}
	c.must(t, "cp", "files:/tmp/host.txt", filepath.Join(dir, "back.txt"))
	if b, err := os.ReadFile(filepath.Join(dir, "back.txt")); err != nil || string(b) != "from the host\n" {
		t.Errorf("cp out of the container: %q, %v", b, err)
	}
	c.must(t, "cp", "files:/etc", filepath.Join(dir, "etc"))
	if _, err := os.Stat(filepath.Join(dir, "etc", "passwd")); err != nil {
		t.Errorf("cp of a directory out of the container: %v", err)
	}
	c.expect(t, 1, "", "cp", "files:/nosuch", dir)
	if out := c.must(t, "diff", "files"); !strings.Contains(out, "A /tmp/host.txt") {
		t.Errorf("diff: %q", out)
	}
	c.must(t, "export", "-o", filepath.Join(dir, "export.tar"), "files")
	if f, err := os.Open(filepath.Join(dir, "export.tar")); err != nil {
		t.Error(err)
	} else {
		ents := tarEntries(t, f)
		f.Close()
		if _, ok := ents["bin/busybox"]; !ok {
			t.Errorf("export: %d entries, no bin/busybox", len(ents))
		}
	}
	c.must(t, "rename", "files", "files2")
	if out := strings.TrimSpace(c.must(t, "inspect", "--format", "{{.Name}}", "files2")); out != "/files2" {
		t.Errorf("inspect after rename: %q", out)
	}
	c.must(t, "update", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "50", "--restart", "always", "files2")
	if out := strings.TrimSpace(c.must(t, "inspect", "--format", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}", "files2")); out != "67108864 500000000 50 always" {
		t.Errorf("inspect after update: %q", out)
	}
	if out := c.must(t, "stats", "--no-stream", "--format", "{{.MemUsage}}", "files2"); !strings.Contains(out, "/ 64MiB") {
		t.Errorf("stats after update --memory 64m: %q, want the 64MiB limit", out)
	}
	c.expect(t, 1, "CpuShares", "update", "--cpu-shares", "512", "files2")
	c.must(t, "rm", "-f", "files2")

	// Detach keys: ctrl-p ctrl-q leave attach and exec -it; the container
	// and the exec'd process run on.
	c.must(t, "run", "-dit", "--name", "detach", "busybox", "sh")
	p := startDockerPTY(t, c, "exec", "-it", "detach", "sh", "-c", "echo exec-ready; exec cat")
	p.expect(`exec-ready`)
	p.send("typed\r")
	p.expect(`typed\r\n(.|\n)*typed`)
	p.send("\x10\x11")
	p.exited(30 * time.Second)
	p = startDockerPTY(t, c, "attach", "detach")
	p.send("echo $((6*7))X\r")
	p.expect(`42X`)
	p.send("\x10\x11")
	p.exited(30 * time.Second)
	if out := strings.TrimSpace(c.must(t, "inspect", "--format", "{{.State.Running}}", "detach")); out != "true" {
		t.Fatalf("after ctrl-p ctrl-q the container is not running: %q", out)
	}
	// Again with other keys, on the same shell: its stdin is still open.
	p = startDockerPTY(t, c, "attach", "--detach-keys", "ctrl-x,y", "detach")
	p.send("echo $((7*8))Y\r")
	p.expect(`56Y`)
	p.send("\x18y")
	p.exited(30 * time.Second)
	if out := strings.TrimSpace(c.must(t, "inspect", "--format", "{{.State.Running}}", "detach")); out != "true" {
		t.Fatalf("after --detach-keys ctrl-x,y the container is not running: %q", out)
	}
	// The exec'd cat outlived its detached session.
	if out := c.must(t, "top", "detach"); !regexp.MustCompile(`(?m)\bcat\s*$`).MatchString(out) {
		t.Errorf("top after detaching exec -it: %q, want the exec'd cat still running", out)
	}
	c.must(t, "rm", "-f", "detach")
}

// dockerPTY is a docker CLI on a terminal.
type dockerPTY struct {
	t       *testing.T
	args    []string
	master  *os.File
	out     testutil.Buffer
	changed chan struct{}
	done    chan struct{}
	err     error
}

func startDockerPTY(t *testing.T, c *dockerCLI, args ...string) *dockerPTY {
	t.Helper()
	master, slaveName, err := engineOpenPTY()
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	t.Cleanup(func() { master.Close() })
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
	p := &dockerPTY{t: t, args: args, master: master, changed: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			if n > 0 {
				p.out.Write(buf[:n])
				select {
				case p.changed <- struct{}{}:
				default:
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return p
}

func (p *dockerPTY) send(s string) {
	p.t.Helper()
	if _, err := p.master.Write([]byte(s)); err != nil {
		p.t.Fatal(err)
	}
}

func (p *dockerPTY) expect(re string) {
	p.t.Helper()
	r := regexp.MustCompile(re)
	deadline := time.After(30 * time.Second)
	for !r.MatchString(p.out.String()) {
		select {
		case <-p.changed:
		case <-deadline:
			p.t.Fatalf("docker %v: the terminal never showed %q; it shows:\n%s", p.args, re, p.out.String())
		}
	}
}

// exited waits for the CLI to end; after a detach docker prints "read
// escape sequence" and its exit code differs between versions.
func (p *dockerPTY) exited(timeout time.Duration) {
	p.t.Helper()
	select {
	case <-p.done:
		p.t.Logf("docker %v ended: %v; terminal: %q", p.args, p.err, p.out.String())
	case <-time.After(timeout):
		p.t.Fatalf("docker %v did not end after the detach keys; the terminal shows:\n%s", p.args, p.out.String())
	}
}
