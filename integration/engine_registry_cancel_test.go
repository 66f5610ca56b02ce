package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
)

// TestEngineCLIPullInterrupt interrupts `engine pull` (SIGINT, as Ctrl-C)
// mid-download from a registry behind a proxy that sends blobs slowly:
// the CLI exits 130, the daemon cancels the pull, no image is recorded,
// no lease is left, containerd's GC removes what was downloaded, and a
// retry succeeds.
func TestEngineCLIPullInterrupt(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	proxy := startProxy(t, reg.host)
	img := pushRandomImage(t, reg.host, "tend/slow", "v1", 3, 1<<20)
	ref := proxy.host + "/tend/slow:v1"
	proxy.throttle(128 << 10) // 3 MB: about 25s at full throttle
	began := time.Now()
	phase := func(what string) { t.Logf("%v: %s", time.Since(began).Round(time.Millisecond), what) }

	root, err := os.MkdirTemp(testEnv.Root, "eng-int-")
	if err != nil {
		t.Fatal(err)
	}
	ns := freshNamespace(t, "pull-int")
	d := startEngine(t, root, ns)
	t.Cleanup(func() { cleanupEngine(t, d) })

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.bin, "pull", ref)
	cmd.Env = append(os.Environ(), "TEND_HOST="+d.sock)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	phase("engine pull started")
	// Plain lines (not a terminal): interrupt at the first Downloading.
	var out []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out = append(out, sc.Text())
		if strings.HasSuffix(sc.Text(), ": Downloading") {
			break
		}
	}
	if len(out) == 0 || !strings.HasSuffix(out[len(out)-1], ": Downloading") {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("pull printed %q before ending, want a Downloading line; stderr %q", out, stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, stdout)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("interrupted pull: %v, want exit 130; stdout %q stderr %q", err, out, stderr.String())
	}
	phase(fmt.Sprintf("the interrupted pull printed %q, exit 130", out))

	// The daemon cancels its pull and releases the pull's lease.
	enginePoll(t, 30*time.Second, "the daemon to cancel the pull", func() bool {
		return strings.Contains(d.logs.String(), "pull cancelled")
	})
	enginePoll(t, 30*time.Second, "the pull's lease to be released", func() bool { return len(leasesOf(t, ns)) == 0 })
	phase("the daemon cancelled the pull and released its lease")
	d.expectFail(t, 1, "No such image", "image", "inspect", ref)

	// What was downloaded is only held by that lease: containerd's GC (run
	// here through a synchronous lease delete) removes it.
	c, err := containerd.New(testEnv.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	nctx := namespaces.WithNamespace(context.Background(), ns)
	l, err := c.LeasesService().Create(nctx, leases.WithRandomID())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.LeasesService().Delete(nctx, l, leases.SynchronousDelete); err != nil {
		t.Fatal(err)
	}
	statuses, err := c.ContentStore().ListStatuses(nctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, desc := range img.Layers {
		if _, err := c.ContentStore().Info(nctx, desc.Digest); !errdefs.IsNotFound(err) {
			t.Errorf("layer %s after the GC: %v, want not found", desc.Digest, err)
		}
		for _, st := range statuses {
			if st.Ref == remotes.MakeRefKey(nctx, desc) {
				t.Errorf("the download of layer %s is still there after the GC: %+v", desc.Digest, st)
			}
		}
	}

	phase("containerd's GC removed what the pull downloaded")
	proxy.throttle(0)
	out2 := d.must(t, "pull", ref)
	phase("the retried pull succeeded")
	if !strings.Contains(out2, "Downloaded newer image") {
		t.Errorf("retried pull printed %q", out2)
	}
	d.must(t, "image", "inspect", ref)
	if ls := leasesOf(t, ns); len(ls) != 0 {
		t.Errorf("the pull left leases %v", ls)
	}
}

// TestEngineRegistryErrors: a malformed reference, a registry that does
// not answer (a closed port of 127.0.0.1), a missing tag and a refused
// login are each a classed error that says what to do, through the CLI
// (exit 1) and the API (4xx or 503, never 500, before any progress).
func TestEngineRegistryErrors(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	pushRandomImage(t, reg.host, "tend/small", "v1", 1, 1<<10)
	authReg := startRegistry(t, registryOpts{auth: true, tls: true})
	t.Setenv("DOCKER_CONFIG", t.TempDir())

	root, err := os.MkdirTemp(testEnv.Root, "eng-err-")
	if err != nil {
		t.Fatal(err)
	}
	ns := freshNamespace(t, "reg-err")
	d := startEngine(t, root, ns, "--registry-certs-dir", authReg.certsDir())
	t.Cleanup(func() { cleanupEngine(t, d) })
	closed := freePort(t) // nothing listens there once freePort returns

	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.sock)
	}}}
	defer hc.CloseIdleConnections()
	for _, tc := range []struct {
		name, ref string
		status    int
		class     string
		msg       []string // in the CLI's stderr and the API's message
	}{
		{"malformed", "Bad//Ref:x", http.StatusBadRequest, "invalid argument",
			[]string{"invalid image reference", "give"}},
		{"unreachable", closed + "/tend/small:v1", http.StatusServiceUnavailable, "unavailable",
			[]string{"registry " + closed + " unreachable", "check that it runs"}},
		{"missing tag", reg.host + "/tend/small:nope", http.StatusNotFound, "not found",
			[]string{"not found in registry " + reg.host, "check the name and tag"}},
		{"auth", authReg.host + "/private/x:v1", http.StatusUnauthorized, "unauthorized",
			[]string{"denied by registry " + authReg.host, "engine login " + authReg.host}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := d.run(t, nil, "pull", tc.ref)
			if code != 1 {
				t.Errorf("engine pull %s: exit %d, want 1; stdout %q stderr %q", tc.ref, code, out, errs)
			}
			for _, m := range tc.msg {
				if !strings.Contains(errs, m) {
					t.Errorf("engine pull %s: stderr %q lacks %q", tc.ref, errs, m)
				}
			}
			req, _ := http.NewRequest(http.MethodPost, "http://engine/v1/images/pull?"+url.Values{"ref": {tc.ref}}.Encode(), nil)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var er struct {
				Message string `json:"message"`
				Class   string `json:"class"`
			}
			b, _ := io.ReadAll(resp.Body)
			if err := json.Unmarshal(b, &er); err != nil || resp.StatusCode != tc.status || er.Class != tc.class {
				t.Fatalf("POST /v1/images/pull?ref=%s: %d %s, want %d with class %q", tc.ref, resp.StatusCode, b, tc.status, tc.class)
			}
			for _, m := range tc.msg {
				if !strings.Contains(er.Message, m) {
					t.Errorf("API message %q lacks %q", er.Message, m)
				}
			}
			t.Logf("%s: %d %s", tc.name, resp.StatusCode, er.Message)
		})
	}
	if ls := leasesOf(t, ns); len(ls) != 0 {
		t.Errorf("the failed pulls left leases %v", ls)
	}
}
