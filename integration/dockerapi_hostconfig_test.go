package integration

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDockerCLIHostConfig drives the docker CLI's mounts, volumes and
// ports against the engine's Docker API: a read-only bind
// mount, a named volume shared by two containers, docker volume ls/rm/
// inspect, a published random port read back with docker port and
// answered through 127.0.0.1, and the container's address in inspect.
func TestDockerCLIHostConfig(t *testing.T) {
	clis := dockerCLIs(t)
	d, _ := startDockerEngine(t, "dhc")
	for _, bin := range clis {
		out, _ := exec.Command(bin, "--version").Output()
		name := strings.TrimSpace(strings.TrimPrefix(strings.SplitN(string(out), ",", 2)[0], "Docker version "))
		t.Run("docker-"+name, func(t *testing.T) { testDockerCLIHostConfig(t, newDockerCLI(t, bin, d.dockerSocket())) })
	}
}

func testDockerCLIHostConfig(t *testing.T, c *dockerCLI) {
	t.Cleanup(func() {
		out, _, _ := c.run(t, "", "ps", "-aq")
		if ids := strings.Fields(out); len(ids) > 0 {
			c.run(t, "", append([]string{"rm", "-f", "-v"}, ids...)...)
		}
	})
	c.must(t, "image", "load", "-i", engineImage(t))

	// A read-only bind mount: readable, a write refused.
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "f"), []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := c.must(t, "run", "--rm", "-v", host+":/h:ro", "busybox", "cat", "/h/f"); out != "from host\n" {
		t.Errorf("cat through a bind mount: %q", out)
	}
	out, errs, code := c.run(t, "", "run", "--rm", "-v", host+":/h:ro", "busybox", "sh", "-c", "echo x > /h/g")
	if code == 0 || !strings.Contains(errs, "Read-only file system") {
		t.Errorf("write to a :ro bind: exit %d, stdout %q, stderr %q; want a failure saying read-only", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(host, "g")); err == nil {
		t.Errorf("the write to a :ro bind reached the host")
	}

	// A named volume: one container writes, another reads.
	c.must(t, "run", "--rm", "-v", "hcdata:/data", "busybox", "sh", "-c", "echo kept > /data/v")
	if out := c.must(t, "run", "--rm", "-v", "hcdata:/data:ro", "busybox", "cat", "/data/v"); out != "kept\n" {
		t.Errorf("second container reads the volume: %q", out)
	}
	if out := c.must(t, "volume", "ls", "--format", "{{.Driver}} {{.Name}}"); !strings.Contains(out, "local hcdata") {
		t.Errorf("volume ls: %q", out)
	}
	if out := strings.TrimSpace(c.must(t, "volume", "inspect", "-f", "{{.Name}} {{.Driver}}", "hcdata")); out != "hcdata local" {
		t.Errorf("volume inspect: %q", out)
	}
	c.must(t, "volume", "create", "--label", "k=v", "hcother")
	if out := c.must(t, "volume", "ls", "-q", "--filter", "label=k=v"); strings.TrimSpace(out) != "hcother" {
		t.Errorf("volume ls --filter label=k=v: %q", out)
	}
	// In use by a container (even a stopped one): refused.
	c.must(t, "create", "--name", "holder", "-v", "hcdata:/data", "busybox", "true")
	if _, _, code := c.run(t, "", "volume", "rm", "hcdata"); code == 0 {
		t.Errorf("volume rm of a volume in use succeeded")
	}
	c.must(t, "rm", "holder")
	if out := strings.TrimSpace(c.must(t, "volume", "rm", "hcdata", "hcother")); out != "hcdata\nhcother" {
		t.Errorf("volume rm: %q", out)
	}
	if out := c.must(t, "volume", "ls", "-q"); strings.Contains(out, "hcdata") || strings.Contains(out, "hcother") {
		t.Errorf("volume ls after rm: %q", out)
	}
	c.expect(t, 1, "hcdata", "volume", "inspect", "hcdata")

	// An anonymous volume (-v /path) goes with the container on --rm; an
	// unused one goes with docker volume prune.
	c.must(t, "create", "--name", "anon", "-v", "/scratch", "busybox", "true")
	if out := strings.TrimSpace(c.must(t, "inspect", "-f", "{{range .Mounts}}{{.Type}} {{.Destination}}{{end}}", "anon")); out != "volume /scratch" {
		t.Errorf("inspect .Mounts of an anonymous volume: %q", out)
	}
	c.must(t, "rm", "anon")
	c.must(t, "volume", "prune", "-f")
	if out := strings.TrimSpace(c.must(t, "volume", "ls", "-q")); out != "" {
		t.Errorf("volume ls after prune: %q", out)
	}

	// A published random port on 127.0.0.1.
	c.must(t, "run", "-d", "--name", "web", "-p", "127.0.0.1::80", "busybox", "sh", "-c",
		"mkdir -p /www && echo hello from web > /www/index.html && exec httpd -f -p 80 -h /www")
	pout := strings.TrimSpace(c.must(t, "port", "web", "80/tcp"))
	h, p, err := net.SplitHostPort(strings.Fields(pout + " x")[0])
	if err != nil || h != "127.0.0.1" || p == "0" {
		t.Fatalf("docker port web 80/tcp: %q", pout)
	}
	if body := getUntil(t, "http://127.0.0.1:"+p+"/", 60*time.Second); body != "hello from web\n" {
		t.Errorf("GET through the published port: %q", body)
	}
	if out := c.must(t, "ps", "--format", "{{.Ports}}"); !strings.Contains(out, "127.0.0.1:"+p+"->80/tcp") {
		t.Errorf("ps .Ports: %q, want 127.0.0.1:%s->80/tcp", out, p)
	}
	// The docker CLIs here speak APIs before 1.52, which still have the
	// default network's address at the top of NetworkSettings.
	ip := strings.TrimSpace(c.must(t, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"))
	if nip := strings.TrimSpace(c.must(t, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "web")); nip != ip {
		t.Errorf("inspect: .NetworkSettings.IPAddress %q, the bridge network's %q", ip, nip)
	}
	if net.ParseIP(ip) == nil {
		t.Errorf("inspect: no container address: %q", ip)
	} else if body := getUntil(t, "http://"+ip+"/", 30*time.Second); body != "hello from web\n" {
		t.Errorf("GET %s on the engine's bridge: %q", ip, body)
	}
	if out := c.must(t, "inspect", "-f", "{{json .NetworkSettings.Ports}}", "web"); !strings.Contains(out, `"HostPort":"`+p+`"`) {
		t.Errorf("inspect .NetworkSettings.Ports: %s", out)
	}

	// A user network: created, listed, used by name, inspected with its
	// container, refused while in use, removed.
	c.must(t, "network", "create", "--label", "k=v", "hcnet")
	if out := c.must(t, "network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}"); !strings.Contains(out, "hcnet bridge local") || !strings.Contains(out, "bridge bridge local") {
		t.Errorf("network ls: %q", out)
	}
	c.must(t, "run", "-d", "--name", "srv", "--network", "hcnet", "busybox", "sh", "-c",
		"mkdir -p /www && echo hello from srv > /www/index.html && exec httpd -f -p 80 -h /www")
	if out := c.must(t, "run", "--rm", "--network", "hcnet", "busybox", "wget", "-q", "-O", "-", "http://srv/"); out != "hello from srv\n" {
		t.Errorf("GET srv by name on hcnet: %q", out)
	}
	if out := c.must(t, "network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{end}}{{range .IPAM.Config}}{{.Subnet}}{{end}}", "hcnet"); !strings.Contains(out, "srv ") || !strings.Contains(out, "/") {
		t.Errorf("network inspect hcnet: %q", out)
	}
	if _, _, code := c.run(t, "", "network", "rm", "hcnet"); code == 0 {
		t.Errorf("network rm of a network in use succeeded")
	}
	c.must(t, "rm", "-f", "srv")
	c.must(t, "network", "rm", "hcnet")
	if out := c.must(t, "network", "ls", "-q", "--filter", "name=hcnet"); strings.TrimSpace(out) != "" {
		t.Errorf("network ls after rm: %q", out)
	}

	// --network none: no address, no published port.
	if out := c.must(t, "run", "--rm", "--network", "none", "busybox", "sh", "-c", "ls /sys/class/net"); strings.TrimSpace(out) != "lo" {
		t.Errorf("--network none interfaces: %q", out)
	}
	// --hostname, --dns, --add-host.
	out = c.must(t, "run", "--rm", "--hostname", "hc1", "--dns", "10.9.8.7", "--add-host", "db:10.1.2.3", "busybox", "sh", "-c",
		"hostname; grep nameserver /etc/resolv.conf; grep db /etc/hosts")
	if !strings.Contains(out, "hc1\n") || !strings.Contains(out, "nameserver 10.9.8.7") || !strings.Contains(out, "10.1.2.3") {
		t.Errorf("hostname, dns, add-host: %q", out)
	}
}
