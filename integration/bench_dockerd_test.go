package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend/internal/pdeath"
)

// privateDockerd is a dockerd of the benchmark's own, on its own
// containerd: own roots, sockets and pidfile in a temp dir, no bridge and
// no iptables, so nothing of the machine's is touched.
type privateDockerd struct {
	dir        string
	containerd *exec.Cmd
	dockerd    *exec.Cmd
	exited     map[*exec.Cmd]chan struct{}
}

func (p *privateDockerd) sock() string { return filepath.Join(p.dir, "docker.sock") }

func (p *privateDockerd) start(b *testing.B, name string, args ...string) *exec.Cmd {
	b.Helper()
	logf, err := os.Create(filepath.Join(p.dir, filepath.Base(name)+".log"))
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := pdeath.Start(cmd, syscall.SIGKILL); err != nil {
		b.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	p.exited[cmd] = done
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	return cmd
}

func (p *privateDockerd) logTail(name string) string {
	b, _ := os.ReadFile(filepath.Join(p.dir, name+".log"))
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// stop ends cmd with SIGTERM, then SIGKILL after 30s.
func (p *privateDockerd) stop(cmd *exec.Cmd) {
	if cmd == nil {
		return
	}
	done := p.exited[cmd]
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// startPrivateDockerd starts containerd and dockerd in a temp dir, or
// skips when either is missing.
func startPrivateDockerd(b *testing.B) *privateDockerd {
	b.Helper()
	dockerd, err := exec.LookPath("dockerd")
	if err != nil {
		b.Skip("dockerd is not installed (Debian's docker.io package ships it; scripts/setup.sh installs it): no dockerd to compare with")
	}
	containerd, err := exec.LookPath("containerd")
	if err != nil {
		b.Skip("containerd is not installed: dockerd needs one of its own")
	}
	// Unix socket paths are short: a dir under /tmp, not the test root.
	dir, err := os.MkdirTemp("", "dkd-")
	if err != nil {
		b.Fatal(err)
	}
	p := &privateDockerd{dir: dir, exited: map[*exec.Cmd]chan struct{}{}}
	b.Cleanup(func() {
		p.stop(p.dockerd)
		p.stop(p.containerd)
		_ = syscall.Unmount(filepath.Join(dir, "exec"), syscall.MNT_DETACH)
		if err := os.RemoveAll(dir); err != nil {
			b.Logf("remove %s: %v", dir, err)
		}
	})
	cdSock := filepath.Join(dir, "containerd.sock")
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[debug]
  address = ""
[metrics]
  address = ""
`, filepath.Join(dir, "cd-root"), filepath.Join(dir, "cd-state"), cdSock, cdSock+".ttrpc")
	if err := os.WriteFile(filepath.Join(dir, "containerd.toml"), []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	p.containerd = p.start(b, containerd, "--config", filepath.Join(dir, "containerd.toml"))
	p.dockerd = p.start(b, dockerd,
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"),
		"-H", "unix://"+p.sock(),
		"--config-file", filepath.Join(dir, "daemon.json"),
		"--containerd", cdSock,
		"--bridge=none", "--iptables=false", "--ip-masq=false", "--userland-proxy=false")
	deadline := time.Now().Add(3 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, "/usr/bin/docker", "-H", "unix://"+p.sock(), "version", "--format", "{{.Server.Version}}").CombinedOutput()
		cancel()
		if err == nil {
			b.Logf("private dockerd %s in %s", strings.TrimSpace(string(out)), dir)
			return p
		}
		select {
		case <-p.exited[p.dockerd]:
			b.Fatalf("dockerd exited at its start:\n%s\ncontainerd:\n%s", p.logTail("dockerd"), p.logTail("containerd"))
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("dockerd did not answer in 3 minutes: %s\n%s", out, p.logTail("dockerd"))
		}
		time.Sleep(200 * time.Millisecond) // poll interval, not synchronisation
	}
}

// BenchmarkDockerCLIRunDockerd times `docker run --rm busybox true` through
// the same docker CLI against tend's Docker socket and against a private
// dockerd (Debian's docker.io, its own containerd), alternating the two in
// every iteration so the machine's drift hits both alike. Both run with
// --network none: the private dockerd has no bridge (it must not touch the
// machine's iptables); tend with its default bridge is the third column.
// Busybox reaches dockerd as tend's own `docker save` of it.
func BenchmarkDockerCLIRunDockerd(b *testing.B) {
	bins := dockerCLIs(b)
	p := startPrivateDockerd(b)
	root, err := os.MkdirTemp(testEnv.Root, "dkbench-")
	if err != nil {
		b.Fatal(err)
	}
	d := startEngine(b, root, testEnv.Namespace+"-dkbench")
	b.Cleanup(func() { cleanupEngine(b, d) })
	bin := bins[len(bins)-1]
	tend := newDockerCLI(b, bin, d.dockerSocket())
	dk := newDockerCLI(b, bin, p.sock())
	tend.must(b, "image", "load", "-i", engineImage(b))
	archive := filepath.Join(p.dir, "busybox-docker.tar")
	tend.must(b, "image", "save", "-o", archive, "busybox:latest")
	if out := dk.must(b, "image", "load", "-i", archive); !strings.Contains(out, "busybox:latest") {
		b.Fatalf("docker load into dockerd: %q", out)
	}
	run := func(c *dockerCLI, args ...string) time.Duration {
		start := time.Now()
		out, errs, code := c.run(b, "", append([]string{"run", "--rm"}, append(args, "busybox", "true")...)...)
		if code != 0 {
			b.Fatalf("docker run against %s: exit %d: %s %s", c.sock, code, out, errs)
		}
		return time.Since(start)
	}
	// Warm both (first-run caches, dockerd's image layer mounts).
	run(tend, "--network", "none")
	run(dk, "--network", "none")
	var tTend, tDockerd, tBridge time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tTend += run(tend, "--network", "none")
		tDockerd += run(dk, "--network", "none")
		tBridge += run(tend)
	}
	b.StopTimer()
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / n }
	b.ReportMetric(ms(tTend), "tend-ms/run")
	b.ReportMetric(ms(tDockerd), "dockerd-ms/run")
	b.ReportMetric(ms(tBridge), "tend-bridge-ms/run")
	b.ReportMetric(float64(tDockerd)/float64(tTend), "dockerd/tend")
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "docker CLI %s, %d runs each: tend %.0f ms, dockerd %.0f ms (dockerd/tend %.2f); tend with its bridge %.0f ms", bin, b.N, ms(tTend), ms(tDockerd), float64(tDockerd)/float64(tTend), ms(tBridge))
	b.Log(buf.String())
}
