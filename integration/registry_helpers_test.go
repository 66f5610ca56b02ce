package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"golang.org/x/crypto/bcrypt"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/internal/pdeath"
	"github.com/tendhq/tend/internal/testutil"
)

// registryBinary is Debian's docker-registry (distribution 2.8).
const registryBinary = "docker-registry"

// testRegistry is a docker-registry process started by a test on
// 127.0.0.1 with a private config and storage dir.
type testRegistry struct {
	t        testing.TB
	dir      string
	host     string // 127.0.0.1:port
	config   string
	user     string // htpasswd user, if auth
	password string
	caPEM    []byte // the test CA, if TLS
	cmd      *exec.Cmd
	exited   chan struct{}
	logs     *testutil.Buffer
}

type registryOpts struct {
	auth bool // htpasswd basic auth
	tls  bool // TLS with a certificate of a CA made here
}

func needRegistry(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath(registryBinary); err != nil {
		t.Skipf("no %s binary: install Debian's docker-registry (scripts/setup.sh does)", registryBinary)
	}
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startRegistry starts a registry the test owns; it is killed at the end.
func startRegistry(t testing.TB, o registryOpts) *testRegistry {
	t.Helper()
	needRegistry(t)
	dir := t.TempDir()
	r := &testRegistry{t: t, dir: dir, host: freePort(t), config: filepath.Join(dir, "config.yml")}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "storage"), r.host)
	if o.tls {
		cert, key := r.makeCerts()
		cfg += fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", cert, key)
	}
	if o.auth {
		r.user, r.password = "tester", "s3cret-pass"
		hash, err := bcrypt.GenerateFromPassword([]byte(r.password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		pw := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(pw, []byte(r.user+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: tend-test\n    path: %s\n", pw)
	}
	if err := os.WriteFile(r.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *testRegistry) start() {
	r.t.Helper()
	r.logs = &testutil.Buffer{}
	r.exited = make(chan struct{})
	r.cmd = exec.Command(registryBinary, "serve", r.config)
	r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
	if err := pdeath.Start(r.cmd, syscall.SIGKILL); err != nil {
		r.t.Fatalf("start %s: %v", registryBinary, err)
	}
	cmd, exited := r.cmd, r.exited
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	scheme := "http"
	tr := &http.Transport{}
	if r.caPEM != nil {
		scheme = "https"
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(r.caPEM)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	c := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	defer tr.CloseIdleConnections()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := c.Get(scheme + "://" + r.host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return
			}
		}
		select {
		case <-exited:
			r.t.Fatalf("%s exited before serving:\n%s", registryBinary, r.logs.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.stop()
			r.t.Fatalf("%s did not serve on %s within 20s:\n%s", registryBinary, r.host, r.logs.String())
		}
	}
}

// stop kills the registry and waits for it; its storage stays for a
// start again.
func (r *testRegistry) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	select {
	case <-r.exited:
		return
	default:
	}
	_ = r.cmd.Process.Kill()
	<-r.exited
}

// makeCerts writes a CA and a certificate for 127.0.0.1 signed by it.
func (r *testRegistry) makeCerts() (certPath, keyPath string) {
	r.t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		r.t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tend test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		r.t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		r.t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		r.t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		r.t.Fatal(err)
	}
	r.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	certPath, keyPath = filepath.Join(r.dir, "cert.pem"), filepath.Join(r.dir, "key.pem")
	write := func(p string, b []byte) {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			r.t.Fatal(err)
		}
	}
	write(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	write(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	return certPath, keyPath
}

// certsDir writes the registry's CA in docker's certs.d layout and
// returns the dir, for backend.RegistryConfig.CertsDir.
func (r *testRegistry) certsDir() string {
	r.t.Helper()
	dir := filepath.Join(r.dir, "certs.d")
	if err := os.MkdirAll(filepath.Join(dir, r.host), 0o700); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, r.host, "ca.crt"), r.caPEM, 0o600); err != nil {
		r.t.Fatal(err)
	}
	return dir
}

func (r *testRegistry) creds() backend.Credentials {
	return func(string) (string, string, error) { return r.user, r.password, nil }
}

// registryProxy sits between the engine and a registry on 127.0.0.1: it
// counts the blob downloads and can hold them, so that tests see a
// shared download and stop the registry mid-pull.
type registryProxy struct {
	host string
	srv  *http.Server

	mu    sync.Mutex
	gets  map[string]int // blob GETs by path
	hold  chan struct{}  // non-nil: blob GETs wait until it is closed
	held  chan struct{}  // closed at the first held GET
	heldN int
	rate  int // > 0: blob bodies are sent at this many bytes a second
}

// throttle sends blob bodies at rate bytes a second (0: at full speed).
func (p *registryProxy) throttle(rate int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rate = rate
}

// throttledWriter writes a blob body in tenths of its rate, one each
// tenth of a second, until the request ends.
type throttledWriter struct {
	http.ResponseWriter
	ctx  context.Context
	rate int
}

func (w *throttledWriter) Write(b []byte) (int, error) {
	chunk := max(w.rate/10, 1)
	n := 0
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for n < len(b) {
		m := min(chunk, len(b)-n)
		k, err := w.ResponseWriter.Write(b[n : n+m])
		n += k
		if err != nil {
			return n, err
		}
		http.NewResponseController(w.ResponseWriter).Flush()
		select {
		case <-tick.C:
		case <-w.ctx.Done():
			return n, w.ctx.Err()
		}
	}
	return n, nil
}

func (w *throttledWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func startProxy(t testing.TB, upstream string) *registryProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &registryProxy{host: l.Addr().String(), gets: make(map[string]int)}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: upstream})
	rp.FlushInterval = -1
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		// As an unreachable registry: the connection just ends.
		if conn, _, herr := http.NewResponseController(w).Hijack(); herr == nil {
			conn.Close()
			return
		}
		w.WriteHeader(http.StatusBadGateway)
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			p.mu.Lock()
			p.gets[r.URL.Path]++
			hold, held, rate := p.hold, p.held, p.rate
			if rate > 0 {
				w = &throttledWriter{ResponseWriter: w, ctx: r.Context(), rate: rate}
			}
			if hold != nil {
				p.heldN++
				if p.heldN == 1 {
					close(held)
				}
			}
			p.mu.Unlock()
			if hold != nil {
				select {
				case <-hold:
				case <-r.Context().Done():
					return
				}
			}
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = p.srv.Serve(l) }()
	t.Cleanup(func() {
		p.release()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.srv.Shutdown(ctx)
		p.srv.Close()
	})
	return p
}

// holdBlobs makes blob GETs wait until release; the returned channel is
// closed when the first one waits.
func (p *registryProxy) holdBlobs() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hold, p.held, p.heldN = make(chan struct{}), make(chan struct{}), 0
	return p.held
}

func (p *registryProxy) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hold != nil {
		close(p.hold)
		p.hold = nil
	}
}

func (p *registryProxy) blobGets() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.gets))
	for k, v := range p.gets {
		out[k] = v
	}
	return out
}

// freshNamespace returns a containerd namespace of its own for a test (an
// engine there has no images); its images are removed at the end.
func freshNamespace(t testing.TB, suffix string) string {
	t.Helper()
	ns := testEnv.Namespace + "-" + suffix
	t.Cleanup(func() {
		c, err := containerd.New(testEnv.Address, containerd.WithDefaultNamespace(ns))
		if err != nil {
			return
		}
		defer c.Close()
		ctx := namespaces.WithNamespace(context.Background(), ns)
		imgs, _ := c.ImageService().List(ctx)
		for _, img := range imgs {
			_ = c.ImageService().Delete(ctx, img.Name, images.SynchronousDelete())
		}
	})
	return ns
}

// progressLog collects progress events.
type progressLog struct {
	mu  sync.Mutex
	evs []backend.ProgressEvent
	any chan struct{} // closed at the first event
}

func newProgressLog() *progressLog { return &progressLog{any: make(chan struct{})} }

func (l *progressLog) add(ev backend.ProgressEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.evs) == 0 {
		close(l.any)
	}
	l.evs = append(l.evs, ev)
}

func (l *progressLog) statuses() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, ev := range l.evs {
		out = append(out, ev.Status)
	}
	return out
}

func (l *progressLog) has(prefix string) bool {
	for _, s := range l.statuses() {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
