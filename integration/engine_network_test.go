package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/network"
)

// The networking tests drive an engine daemon with its own
// bridge and subnet (networkArgs) and talk only to 127.0.0.1 and to the
// addresses of containers on that bridge.

// netDaemon starts a daemon for one networking test, with the test image.
func netDaemon(t *testing.T, name string) (*engineDaemon, string) {
	t.Helper()
	root, err := os.MkdirTemp(testEnv.Root, "net-")
	if err != nil {
		t.Fatal(err)
	}
	d := startEngine(t, root, testEnv.Namespace+"-"+name)
	t.Cleanup(func() { cleanupEngine(t, d) })
	d.must(t, "image", "import", engineImage(t))
	return d, root
}

// httpdCmd serves "hello from NAME" on port 80 in the foreground.
func httpdCmd(name string) []string {
	return []string{"sh", "-c", "mkdir -p /www && echo hello from " + name + " > /www/index.html && exec httpd -f -p 80 -h /www"}
}

// getUntil GETs url until it answers 200 or the deadline passes, and
// returns the body.
func getUntil(t *testing.T, url string, timeout time.Duration) string {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	var last error
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && rerr == nil {
				return string(body)
			}
			err = fmt.Errorf("status %d, %v", resp.StatusCode, rerr)
		}
		last = err
		time.Sleep(100 * time.Millisecond) // poll interval, not synchronisation
	}
	t.Fatalf("GET %s: no answer within %v: %v", url, timeout, last)
	return ""
}

// freeLoopbackPort returns a TCP port free on 127.0.0.1 now.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// netRecord is the network part of a container record.
type netRecord struct {
	ID           string `json:"id"`
	State        string `json:"state"`
	RestartCount int    `json:"restart_count"`
	Network      *struct {
		Mode       string `json:"mode"`
		NetNS      string `json:"netns"`
		Attachment *struct {
			Network   string `json:"network"`
			IPAddress string `json:"ip_address"`
			Ports     []struct {
				HostIP        string `json:"host_ip"`
				HostPort      int    `json:"host_port"`
				ContainerPort int    `json:"container_port"`
				Protocol      string `json:"protocol"`
			} `json:"ports"`
		} `json:"attachment"`
	} `json:"network"`
}

func (d *engineDaemon) netInspect(t *testing.T, ref string) netRecord {
	t.Helper()
	var recs []netRecord
	out := d.must(t, "inspect", "--raw", ref)
	if err := json.Unmarshal([]byte(out), &recs); err != nil || len(recs) != 1 {
		t.Fatalf("inspect %s: %v in %q", ref, err, out)
	}
	return recs[0]
}

func (r netRecord) ip() string {
	if r.Network == nil || r.Network.Attachment == nil {
		return ""
	}
	return r.Network.Attachment.IPAddress
}

// apiStatus makes one API request and returns its HTTP status and body.
func (d *engineDaemon) apiStatus(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.sock)
	}}, Timeout: 45 * time.Second}
	req, err := http.NewRequest(method, "http://engine/v1"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestEngineNetworkPublish: busybox httpd answers a GET from the host
// through a published port on 127.0.0.1 (a fixed one and a random one),
// shown by ps, port and inspect; a taken port fails the start with a
// classed error before the container runs.
func TestEngineNetworkPublish(t *testing.T) {
	d, _ := netDaemon(t, "netpub")
	img := testEnv.ImageRef
	port := freeLoopbackPort(t)
	d.must(t, append([]string{"run", "-d", "--name", "web", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), img}, httpdCmd("web")...)...)
	if body := getUntil(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 60*time.Second); body != "hello from web\n" {
		t.Fatalf("GET through the published port: %q", body)
	}
	want := fmt.Sprintf("127.0.0.1:%d->80/tcp", port)
	if out := d.must(t, "ps"); !strings.Contains(out, "PORTS") || !strings.Contains(out, want) {
		t.Errorf("ps lacks the PORTS column or %s:\n%s", want, out)
	}
	if out := d.must(t, "port", "web"); strings.TrimSpace(out) != fmt.Sprintf("80/tcp -> 127.0.0.1:%d", port) {
		t.Errorf("port web: %q", out)
	}
	rec := d.netInspect(t, "web")
	if rec.ip() == "" || len(rec.Network.Attachment.Ports) != 1 || rec.Network.Attachment.Ports[0].HostPort != port {
		t.Errorf("inspect web: network %+v", rec.Network)
	}
	// The container's own address on the engine's bridge answers too.
	if body := getUntil(t, "http://"+rec.ip()+"/", 10*time.Second); body != "hello from web\n" {
		t.Errorf("GET %s: %q", rec.ip(), body)
	}

	// A random host port (-p 127.0.0.1::80), read back with engine port.
	d.must(t, append([]string{"run", "-d", "--name", "rnd", "-p", "127.0.0.1::80", img}, httpdCmd("rnd")...)...)
	out := strings.TrimSpace(d.must(t, "port", "rnd", "80/tcp"))
	host, p, err := net.SplitHostPort(out)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("port rnd 80/tcp: %q", out)
	}
	if body := getUntil(t, "http://127.0.0.1:"+p+"/", 60*time.Second); body != "hello from rnd\n" {
		t.Fatalf("GET through the random port: %q", body)
	}

	// The port web holds: refused before the container runs.
	d.must(t, "create", "--name", "clash", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), img, "sleep", "1000")
	code, body := d.apiStatus(t, http.MethodPost, "/containers/clash/start", "")
	if code != http.StatusConflict || !strings.Contains(body, "published by another container") {
		t.Errorf("start with a taken port: %d %s; want 409 naming the other container", code, body)
	}
	if rec := d.netInspect(t, "clash"); rec.State == "running" || rec.Network != nil {
		t.Errorf("the refused container runs or holds a network: %+v", rec)
	}
	// A port a host program holds: the same.
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	held := l.Addr().(*net.TCPAddr).Port
	d.expectFail(t, 125, "in use by another program", "run", "-d", "--name", "clash2", "-p", fmt.Sprintf("127.0.0.1:%d:80", held), img, "sleep", "1000")
}

// TestEngineNetworkUserNetwork: two containers on a user network reach
// each other by name; removing the network while they exist is a 409, and
// works once they are gone.
func TestEngineNetworkUserNetwork(t *testing.T) {
	d, root := netDaemon(t, "netuser")
	img := testEnv.ImageRef
	_, subnet := testBridge(root + "/user") // another /24 than the default bridge's
	d.must(t, "network", "create", "--subnet", subnet, "appnet")
	if out := d.must(t, "network", "ls"); !strings.Contains(out, "appnet") || !strings.Contains(out, subnet) {
		t.Fatalf("network ls:\n%s", out)
	}
	d.must(t, append([]string{"run", "-d", "--name", "srv", "--network", "appnet", img}, httpdCmd("srv")...)...)
	out := d.must(t, "run", "--rm", "--name", "cli", "--network", "appnet", img, "sh", "-c",
		// busybox-static's wget crashes in the container (glibc's static
		// resolver); nc speaks the HTTP.
		`ping -c 1 -W 5 srv >/dev/null && echo ping-ok; for i in $(seq 50); do printf 'GET / HTTP/1.0\r\n\r\n' | nc srv 80 | grep hello && exit 0; sleep 0.2; done; exit 1`)
	if !strings.Contains(out, "ping-ok") || !strings.Contains(out, "hello from srv") {
		t.Fatalf("from cli to srv by name: %q", out)
	}
	// srv's hosts file names cli while it ran, and no longer.
	hosts := d.must(t, "exec", "srv", "cat", "/etc/hosts")
	if strings.Contains(hosts, "cli") || !strings.Contains(hosts, "srv") {
		t.Errorf("srv's /etc/hosts after cli left:\n%s", hosts)
	}
	code, body := d.apiStatus(t, http.MethodDelete, "/networks/appnet", "")
	if code != http.StatusConflict || !strings.Contains(body, "in use") {
		t.Errorf("DELETE a network in use: %d %s; want 409", code, body)
	}
	d.expectFail(t, 1, "in use by container(s) srv", "network", "rm", "appnet")
	var info struct {
		Containers []struct {
			Name      string `json:"name"`
			IPAddress string `json:"ip_address"`
		} `json:"containers"`
	}
	if err := json.Unmarshal([]byte(d.must(t, "network", "inspect", "appnet")), &[]any{&info}); err != nil || len(info.Containers) != 1 || info.Containers[0].Name != "srv" {
		t.Errorf("network inspect appnet: %+v %v", info, err)
	}
	d.must(t, "rm", "-f", "srv")
	d.must(t, "network", "rm", "appnet")
	if _, err := net.InterfaceByName(bridgeOf(t, root, "appnet")); err == nil {
		t.Errorf("the bridge of the removed network is still there")
	}
}

// bridgeOf is the bridge recorded for a network, or "" once removed.
func bridgeOf(t *testing.T, root, name string) string {
	data, err := os.ReadFile(filepath.Join(root, "network", "networks", name+".json"))
	if err != nil {
		return "no-such-bridge"
	}
	var n struct {
		Bridge string `json:"bridge"`
	}
	json.Unmarshal(data, &n)
	return n.Bridge
}

// TestEngineNetworkNoneAndErrors: --network none has only lo (up); an
// unknown network, a malformed -p and published ports on none are classed
// errors; --hostname, --add-host and --dns reach the container's files.
func TestEngineNetworkNoneAndErrors(t *testing.T) {
	d, _ := netDaemon(t, "netnone")
	img := testEnv.ImageRef
	out := d.must(t, "run", "--rm", "--network", "none", img, "sh", "-c", "ls /sys/class/net; cat /sys/class/net/lo/operstate /sys/class/net/lo/flags")
	if f := strings.Fields(out); len(f) < 1 || f[0] != "lo" || strings.Contains(out, "eth0") {
		t.Errorf("--network none: interfaces %q, want lo only", out)
	}
	out = d.must(t, "run", "--rm", "--hostname", "box1", "--add-host", "db.test:10.1.2.3", "--dns", "10.9.9.9", img,
		"sh", "-c", "hostname; cat /etc/hostname /etc/hosts /etc/resolv.conf")
	for _, want := range []string{"box1\nbox1\n", "10.1.2.3\tdb.test", "nameserver 10.9.9.9"} {
		if !strings.Contains(out, want) {
			t.Errorf("hostname/add-host/dns: %q lacks %q", out, want)
		}
	}
	d.expectFail(t, 125, "network nosuchnet not found", "run", "--network", "nosuchnet", img, "true")
	code, _ := d.apiStatus(t, http.MethodPost, "/containers", fmt.Sprintf(`{"image":%q,"network_mode":"nosuchnet"}`, img))
	if code != http.StatusNotFound {
		t.Errorf("create on an unknown network: %d, want 404", code)
	}
	for _, bad := range []string{"80:", "abc", "1.2.3:80:80", "70000:80", "80/sctp", "8080-8081:80-81"} {
		d.expectFail(t, 125, "invalid port publication", "run", "-p", bad, img, "true")
	}
	code, _ = d.apiStatus(t, http.MethodPost, "/containers", fmt.Sprintf(`{"image":%q,"publish":[{"container_port":0,"host_port":1}]}`, img))
	if code != http.StatusBadRequest {
		t.Errorf("create with a malformed port: %d, want 400", code)
	}
	d.expectFail(t, 125, "cannot be published with --network none", "run", "--network", "none", "-p", "80", img, "true")
}

// leftovers counts what networking leaves on the host for the daemon on
// root: veths on its bridge, namespaces, IPAM leases, and iptables rules
// naming its subnet or one of ids.
func leftovers(t *testing.T, root string, ids []string) map[string]int {
	t.Helper()
	bridge, subnet := testBridge(root)
	out := map[string]int{}
	if links, err := exec.Command("ip", "-o", "link", "show", "master", bridge).Output(); err == nil {
		out["veth"] = strings.Count(string(links), "veth")
	}
	ns, _ := os.ReadDir(filepath.Join(root, "network", "netns"))
	for _, e := range ns {
		if e.Name() != ".new" {
			out["netns"]++
		}
	}
	leases, _ := filepath.Glob(filepath.Join(root, "network", "ipam", "*", "*.*.*.*"))
	for _, l := range leases {
		if !strings.Contains(filepath.Base(l), "last_reserved") {
			out["lease"]++
		}
	}
	prefix := strings.TrimSuffix(subnet, "0/24")
	for _, table := range []string{"nat", "filter"} {
		rules, err := exec.Command("iptables-save", "-t", table).Output()
		if err != nil {
			t.Fatalf("iptables-save: %v", err)
		}
		for _, line := range strings.Split(string(rules), "\n") {
			if strings.Contains(line, prefix) {
				out["iptables"]++
				continue
			}
			for _, id := range ids {
				if strings.Contains(line, id) {
					out["iptables"]++
					break
				}
			}
		}
	}
	return out
}

// TestBackendNetworkNoLeaks: 100 run/rm cycles of a container with a
// published port (the backend with its network manager) leave no veth,
// namespace, lease or iptables rule.
//
// A cycle costs about 66 iptables and ip6tables processes that the
// bridge, portmap and firewall plugins run (ADD and DEL), plus runc: on
// the 2-core test machine 0.5 s idle and seconds under load, whatever the
// engine does (BenchmarkLifecycleNetwork puts tend level with go-cni on the
// same plugins). The cycles are independent, so they run on
// leakWorkers goroutines at once: the test fits in the suite, and leaks
// that only concurrent starts and removals make (IPAM, iptables races)
// are counted too.
func TestBackendNetworkNoLeaks(t *testing.T) {
	root, err := os.MkdirTemp(testEnv.Root, "net-leak-")
	if err != nil {
		t.Fatal(err)
	}
	bridge, subnet := testBridge(root)
	nm, err := network.New(network.Config{Root: filepath.Join(root, "network"), Bridge: bridge, Subnet: subnet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanupBridges(t, root, bridge) })
	env := newEngineEnv(t, func(c *backend.Config) { c.Network = nm })
	before := leftovers(t, root, nil)
	n := 100
	if testing.Short() {
		n = 12
	}
	const leakWorkers = 6
	opts := backend.CreateOptions{Cmd: []string{"sleep", "1000"}, Publish: []network.PortMapping{{HostIP: "127.0.0.1", ContainerPort: 80}}}
	first := env.run(opts)
	ids := []string{first.ID}
	if during := leftovers(t, root, ids); during["veth"] != 1 || during["netns"] != 1 || during["lease"] != 1 || during["iptables"] == 0 {
		t.Fatalf("a running container's network is not counted: %v", during)
	}
	if err := env.e.Remove(testCtx(t), first.ID, true); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	var (
		mu   sync.Mutex
		next = 1
	)
	g, gctx := errgroup.WithContext(ctx)
	for w := 0; w < leakWorkers; w++ {
		g.Go(func() error {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return nil
				}
				c, err := env.e.Create(gctx, backend.CreateOptions{Rootfs: testEnv.Rootfs, Cmd: opts.Cmd, Publish: opts.Publish})
				if err != nil {
					return fmt.Errorf("cycle %d: create: %w", i, err)
				}
				mu.Lock()
				ids = append(ids, c.ID)
				mu.Unlock()
				if err := env.e.Start(gctx, c.ID); err != nil {
					return fmt.Errorf("cycle %d: start: %w", i, err)
				}
				if err := env.e.Remove(gctx, c.ID, true); err != nil {
					return fmt.Errorf("cycle %d: remove: %w", i, err)
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(ids) != n {
		t.Fatalf("%d cycles ran, want %d", len(ids), n)
	}
	after := leftovers(t, root, ids)
	for _, k := range []string{"veth", "netns", "lease", "iptables"} {
		if after[k] != before[k] {
			t.Errorf("after %d run/rm cycles: %s %d, before %d", n, k, after[k], before[k])
		}
	}
}

// TestEngineNetworkRestartKeepsPorts: a container restarted by its policy
// comes back on its network with its published port.
func TestEngineNetworkRestartKeepsPorts(t *testing.T) {
	d, _ := netDaemon(t, "netrestart")
	img := testEnv.ImageRef
	port := freeLoopbackPort(t)
	// The first run: httpd in the background; the shell fails once the
	// marker says it served a request. The run after the restart (the
	// rootfs keeps /www/ran) only serves.
	d.must(t, "run", "-d", "--name", "flaky", "--restart", "on-failure", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), img, "sh", "-c",
		"if [ -e /www/ran ]; then exec httpd -f -p 80 -h /www; fi; mkdir -p /www && echo run > /www/index.html && touch /www/ran && httpd -p 80 -h /www && while ! [ -e /www/stop ]; do sleep 0.1; done; exit 3")
	getUntil(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 60*time.Second)
	d.must(t, "exec", "flaky", "touch", "/www/stop")
	enginePoll(t, 60*time.Second, "a restart by policy", func() bool {
		r := d.netInspect(t, "flaky")
		return r.RestartCount >= 1 && r.State == "running"
	})
	if body := getUntil(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 60*time.Second); body != "run\n" {
		t.Fatalf("GET after the restart: %q", body)
	}
	if r := d.netInspect(t, "flaky"); r.ip() == "" || len(r.Network.Attachment.Ports) != 1 || r.Network.Attachment.Ports[0].HostPort != port {
		t.Errorf("after the restart: %+v", r.Network)
	}
}

// TestEngineNetworkLiveRestore: after a SIGKILL of the engine and a new
// start on its root, a running container keeps its address and port; one
// that exited while no engine ran has its lease and rules released.
func TestEngineNetworkLiveRestore(t *testing.T) {
	d, root := netDaemon(t, "netlive")
	img := testEnv.ImageRef
	port := freeLoopbackPort(t)
	d.must(t, append([]string{"run", "-d", "--name", "web", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), img}, httpdCmd("web")...)...)
	getUntil(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 60*time.Second)
	ip := d.netInspect(t, "web").ip()
	gone := strings.TrimSpace(d.must(t, "run", "-d", "--name", "gone", "-p", "127.0.0.1::80", img, "sleep", "1000"))
	gonePid := d.inspect(t, "gone").Pid
	d.kill(t)
	if err := syscall.Kill(gonePid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the container's process: %v", err)
	}
	hostProcessGone(t, uint32(gonePid), 30*time.Second)
	// The published port works with no engine.
	getUntil(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 10*time.Second)

	d2 := startEngine(t, root, d.ns)
	t.Cleanup(func() { cleanupEngine(t, d2) })
	if r := d2.netInspect(t, "web"); r.State != "running" || r.ip() != ip {
		t.Fatalf("web after the engine's restart: %s at %q, want running at %s", r.State, r.ip(), ip)
	}
	getUntil(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 10*time.Second)
	enginePoll(t, 30*time.Second, "the exit of gone", func() bool { return d2.netInspect(t, "gone").State == "exited" })
	left := leftovers(t, root, []string{gone})
	if left["lease"] != 1 || left["netns"] != 1 || left["veth"] != 1 {
		t.Errorf("after the restart: %v, want web's lease, namespace and veth only", left)
	}
	if rules, _ := exec.Command("iptables-save").Output(); strings.Contains(string(rules), gone) {
		t.Errorf("iptables rules of the container that exited while no engine ran are left")
	}
	// A new container never gets web's address.
	d2.must(t, "run", "-d", "--name", "new", img, "sleep", "1000")
	if nip := d2.netInspect(t, "new").ip(); nip == ip || nip == "" {
		t.Errorf("new container got %q (web has %s)", nip, ip)
	}
}

// TestEngineNetworkUnhealthyRestartKeepsNetwork: a container restarted by
// its on-unhealthy action comes back on its user network, with the same
// published host port and its name in a peer's /etc/hosts.
func TestEngineNetworkUnhealthyRestartKeepsNetwork(t *testing.T) {
	d, root := netDaemon(t, "netunhealthy")
	img := testEnv.ImageRef
	_, subnet := testBridge(root + "/user")
	d.must(t, "network", "create", "--subnet", subnet, "healthnet")
	port := freeLoopbackPort(t)
	// Every run counts itself in /www/n (the rootfs outlives a restart),
	// serves "run N" and clears the marker that makes it unhealthy.
	d.must(t, "run", "-d", "--name", "sick", "--network", "healthnet", "-p", fmt.Sprintf("127.0.0.1:%d:80", port),
		"--health-cmd", "test ! -e /www/sick", "--health-interval", "1s", "--health-retries", "1", "--on-unhealthy", "restart",
		img, "sh", "-c", "mkdir -p /www; rm -f /www/sick; n=$(( $(cat /www/n 2>/dev/null || echo 0) + 1 )); echo $n > /www/n; echo run $n > /www/index.html; exec httpd -f -p 80 -h /www")
	d.must(t, "run", "-d", "--name", "peer", "--network", "healthnet", img, "sleep", "1000")
	if body := getUntil(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 60*time.Second); body != "run 1\n" {
		t.Fatalf("GET before the restart: %q", body)
	}
	d.must(t, "exec", "sick", "touch", "/www/sick")
	enginePoll(t, 60*time.Second, "a restart on unhealthy", func() bool {
		r := d.netInspect(t, "sick")
		return r.RestartCount >= 1 && r.State == "running"
	})
	if body := getUntil(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 60*time.Second); body != "run 2\n" {
		t.Fatalf("GET after the restart: %q, want the second run's answer", body)
	}
	r := d.netInspect(t, "sick")
	if r.ip() == "" || r.Network.Attachment.Network != "healthnet" || len(r.Network.Attachment.Ports) != 1 || r.Network.Attachment.Ports[0].HostPort != port {
		t.Fatalf("after the restart: %+v", r.Network)
	}
	// The peer finds the restarted container by name at its new address.
	enginePoll(t, 30*time.Second, "sick's new address in peer's /etc/hosts", func() bool {
		return strings.Contains(d.must(t, "exec", "peer", "cat", "/etc/hosts"), r.ip()+"\tsick")
	})
	out := d.must(t, "exec", "peer", "sh", "-c", `printf 'GET / HTTP/1.0\r\n\r\n' | nc sick 80`)
	if !strings.Contains(out, "run 2") {
		t.Errorf("peer to sick by name after the restart: %q", out)
	}
}

// TestEngineNetworkConnectUnsupported: network connect and disconnect
// answer that a container's network is fixed at create (501, exit 1), and
// still tell an unknown network or container apart (404).
func TestEngineNetworkConnectUnsupported(t *testing.T) {
	d, _ := netDaemon(t, "netconnect")
	img := testEnv.ImageRef
	d.must(t, "network", "create", "othernet")
	d.must(t, "create", "--name", "c1", img, "sleep", "1000")
	for _, verb := range []string{"connect", "disconnect"} {
		d.expectFail(t, 1, "network "+verb+" of container c1 to othernet is not supported: a container's network is fixed at create", "network", verb, "othernet", "c1")
		code, body := d.apiStatus(t, http.MethodPost, "/networks/othernet/"+verb, `{"container":"c1"}`)
		if code != http.StatusNotImplemented || !strings.Contains(body, "not supported") {
			t.Errorf("POST /networks/othernet/%s: %d %s; want 501", verb, code, body)
		}
		d.expectFail(t, 1, "network nosuchnet not found", "network", verb, "nosuchnet", "c1")
		if code, body := d.apiStatus(t, http.MethodPost, "/networks/othernet/"+verb, `{"container":"nosuch"}`); code != http.StatusNotFound {
			t.Errorf("POST /networks/othernet/%s for an unknown container: %d %s; want 404", verb, code, body)
		}
	}
}
