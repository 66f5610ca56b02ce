package server

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/cmd/internal/api"
)

// dialRaw opens a connection to the daemon that fails the test rather than
// hang: every read or write ends within 10s.
func dialRaw(t *testing.T, sock string) net.Conn {
	t.Helper()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	return conn
}

// assertClosed reads until the daemon closes conn; hitting the test's own
// 10s deadline instead means the daemon held the connection.
func assertClosed(t *testing.T, conn net.Conn, r io.Reader) {
	t.Helper()
	_, err := io.Copy(io.Discard, r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the daemon still holds the connection: %v", err)
	}
}

func TestSlowBodyIsCutOff(t *testing.T) {
	f := newFake()
	_, sock, _ := serveWith(t, f, Options{Version: "test", BodyTimeout: 100 * time.Millisecond})
	conn := dialRaw(t, sock)
	// Half a body, then nothing.
	if _, err := io.WriteString(conn, "POST /v1/containers HTTP/1.1\r\nHost: engine\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\":"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer to a slow body: %v", err)
	}
	var er api.ErrorResponse
	_ = json.NewDecoder(resp.Body).Decode(&er)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(er.Message, "did not arrive in time") {
		t.Fatalf("slow body: %d %+v, want 408", resp.StatusCode, er)
	}
	assertClosed(t, conn, br)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.created) != 0 {
		t.Fatalf("created %v from a body that never arrived", f.created)
	}
}

func TestSlowHeaderIsCutOff(t *testing.T) {
	_, sock, _ := serveWith(t, newFake(), Options{Version: "test", HeaderTimeout: 100 * time.Millisecond})
	conn := dialRaw(t, sock)
	if _, err := io.WriteString(conn, "GET /v1/info HTTP/1.1\r\nHost: eng"); err != nil {
		t.Fatal(err)
	}
	assertClosed(t, conn, conn)
}

func TestIdleConnectionIsClosed(t *testing.T) {
	_, sock, _ := serveWith(t, newFake(), Options{Version: "test", IdleTimeout: 100 * time.Millisecond})
	conn := dialRaw(t, sock)
	if _, err := io.WriteString(conn, "GET /v1/info HTTP/1.1\r\nHost: engine\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	assertClosed(t, conn, br)
}

// TestBodyDeadlineLiftedAfterBody: a request whose body came in time may
// take longer than the body timeout (an exec, a create of a big image): no
// timeout of the server's may bound the handler or its answer.
func TestBodyDeadlineLiftedAfterBody(t *testing.T) {
	release := make(chan struct{})
	f := &slowCreateEngine{release: release, entered: make(chan struct{})}
	c, _, _ := serveWith(t, f, Options{Version: "test", BodyTimeout: 50 * time.Millisecond})
	done := make(chan error, 1)
	go func() {
		_, err := c.Create(context.Background(), api.CreateOptions{Name: "x"})
		done <- err
	}()
	<-f.entered
	// Let the body deadline pass while the engine works: the background
	// read of the connection must not see it as the client leaving.
	timer := time.NewTimer(200 * time.Millisecond)
	<-timer.C
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("create that outlived the body timeout: %v", err)
	}
}

type slowCreateEngine struct {
	Engine
	entered, release chan struct{}
}

func (f *slowCreateEngine) Create(ctx context.Context, o api.CreateOptions) (*api.Container, error) {
	close(f.entered)
	select {
	case <-f.release:
		return &api.Container{ID: "x", Name: o.Name}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// floodEngine's Events hands over events as fast as fn takes them, until
// fn fails, and records why it stopped.
type floodEngine struct {
	Engine
	mu      sync.Mutex
	sent    int
	stopped error
	done    chan struct{}
}

func (f *floodEngine) Events(ctx context.Context, _ time.Time, _ func(api.Event) bool, fn func(api.Event) error) error {
	defer close(f.done)
	pad := strings.Repeat("x", 4096)
	for i := 0; i < 1_000_000; i++ {
		if err := fn(api.Event{Type: "die", Name: pad}); err != nil {
			f.mu.Lock()
			f.sent, f.stopped = i, err
			f.mu.Unlock()
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
	return nil
}

func TestSlowEventsClientIsDisconnected(t *testing.T) {
	f := &floodEngine{done: make(chan struct{})}
	_, sock, _ := serveWith(t, f, Options{Version: "test", EventQueue: 8, StreamWriteTimeout: 100 * time.Millisecond})
	conn := dialRaw(t, sock)
	if _, err := io.WriteString(conn, "GET /v1/events HTTP/1.1\r\nHost: engine\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// Never read: the engine's events must stop piling up for us.
	select {
	case <-f.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the engine still feeds a client that reads nothing")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !errors.Is(f.stopped, errSlowClient) {
		t.Fatalf("events stopped with %v after %d events, want the slow-client error", f.stopped, f.sent)
	}
	// The stream ends: with an error event that says why when the client
	// reads what was queued in time, by a cut connection otherwise.
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	var last api.EventMessage
	for {
		var e api.EventMessage
		if err := dec.Decode(&e); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the daemon still holds the events stream: %v", err)
			}
			break
		}
		last = e
	}
	if last.Error != "" && !strings.Contains(last.Error, "more than 8 events") {
		t.Fatalf("last event: %+v, want the disconnect reason", last)
	}
}

// importEngine reads an archive as containerd's importer does: tar entry
// by entry, with the reader's errors wrapped.
type importEngine struct {
	Engine
	read int64
}

func (f *importEngine) ImportImage(_ context.Context, r io.Reader) ([]api.Image, error) {
	cr := &countReader{r: r}
	defer func() { f.read += cr.n }()
	tr := tar.NewReader(cr)
	for {
		_, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return []api.Image{{Ref: "x"}}, nil
		}
		if err == nil {
			_, err = io.Copy(io.Discard, tr)
		}
		if err != nil {
			return nil, fmt.Errorf("import image archive: %w", err)
		}
	}
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// tarOf is a tar archive of one file of size bytes.
func tarOf(t *testing.T, size int) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: "blob", Mode: 0o644, Size: int64(size)}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(bytes.Repeat([]byte("a"), size)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestImportSizeLimit(t *testing.T) {
	f := &importEngine{}
	c, sock, _ := serveWith(t, f, Options{Version: "test", MaxImportBytes: 3000})
	big := tarOf(t, 8000)
	// Announced too large: refused before anything is read.
	status, er := rawRequest(t, sock, "POST", "/v1/images/import", bytes.NewReader(big))
	if status != http.StatusRequestEntityTooLarge || !strings.Contains(er.Message, "3000") {
		t.Fatalf("import of %d bytes: %d %+v, want 413 naming the limit", len(big), status, er)
	}
	// Not announced (chunked): cut at the limit.
	_, err := c.ImportImage(context.Background(), io.MultiReader(bytes.NewReader(big)))
	var re *api.RemoteError
	if !errors.As(err, &re) || re.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked import over the limit: %v, want 413", err)
	}
	if f.read > 3000 {
		t.Fatalf("engine read %d bytes of an import limited to 3000", f.read)
	}
	if _, err := c.ImportImage(context.Background(), bytes.NewReader(tarOf(t, 10))); err != nil {
		t.Fatalf("import under the limit: %v", err)
	}
}

// TestImportBrokenArchive: an archive that is not one is the client's
// error (400 saying what to send), not the daemon's (500).
func TestImportBrokenArchive(t *testing.T) {
	c, _, _ := serve(t, &importEngine{})
	good := tarOf(t, 4000)
	for _, tc := range []struct {
		name string
		body []byte
		msg  string
	}{
		{"empty", nil, "empty image archive"},
		{"garbage", bytes.Repeat([]byte{0x5a, 0x13, 0xff}, 3000), "not a tar"},
		{"short garbage", []byte("hello"), "not a tar"},
		{"truncated", good[:2000], "not a complete tar"},
	} {
		_, err := c.ImportImage(context.Background(), bytes.NewReader(tc.body))
		var re *api.RemoteError
		if !errors.As(err, &re) || re.Status != http.StatusBadRequest || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want 400 saying %q", tc.name, err, tc.msg)
		}
	}
}

func TestWrongMethodIs405WithAllow(t *testing.T) {
	_, sock, _ := serve(t, newFake())
	for _, tc := range []struct{ method, path, allow string }{
		{"PUT", "/v1/containers", "GET, POST"},
		{"GET", "/v1/containers/web/start", "POST"},
		{"POST", "/v1/containers/web", "GET, DELETE"},
		{"PUT", "/v1/images/busybox", "GET, DELETE"}, // GET is image inspect
	} {
		resp, er := sendRaw(t, sock, tc.method, tc.path)
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d Allow %q %+v, want 405 Allow %q", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), er, tc.allow)
		}
	}
}

func TestErrorsDoNotEchoUnboundedInput(t *testing.T) {
	c, sock, _ := serve(t, newFake())
	huge := strings.Repeat("n", 100<<10)
	// Clean path, invalid name: 400 with a short message.
	resp, er := sendRaw(t, sock, "GET", "/v1/containers/"+huge)
	if resp.StatusCode != http.StatusBadRequest || len(er.Message) > 512 {
		t.Fatalf("100 KB name: %d, message of %d bytes", resp.StatusCode, len(er.Message))
	}
	// The client refuses it with a short message too.
	_, err := c.Inspect(context.Background(), huge)
	if !errdefs.IsInvalidArgument(err) || len(err.Error()) > 512 {
		t.Fatalf("client Inspect of a 100 KB name: %d bytes: %.200v", len(err.Error()), err)
	}
	// Unknown routes and filters echo a bounded part of the request.
	status, er := rawRequest(t, sock, "GET", "/v1/"+huge, nil)
	if status != http.StatusNotFound || len(er.Message) > 512 {
		t.Fatalf("100 KB route: %d, message of %d bytes", status, len(er.Message))
	}
	for _, path := range []string{
		"/v1/containers?filter=" + huge,
		"/v1/containers?filter=" + huge + "=x",
		"/v1/events?filter=" + huge,
		"/v1/events?filter=" + huge + "=x",
		"/v1/events?since=" + huge,
		"/v1/containers/web/wait?condition=" + huge,
		"/v1/containers/web/stop?t=" + huge,
		"/v1/containers/web/kill?signal=" + huge,
		"/v1/containers/web/logs?tail=" + huge,
		"/v1/containers/web/resize?w=" + huge + "&h=1",
	} {
		method := "GET"
		if strings.Contains(path, "wait") || strings.Contains(path, "stop") || strings.Contains(path, "kill") || strings.Contains(path, "resize") {
			method = "POST"
		}
		status, er := rawRequest(t, sock, method, path, nil)
		if status != http.StatusBadRequest || len(er.Message) > 512 {
			t.Errorf("%s %.40s...: %d, message of %d bytes", method, path, status, len(er.Message))
		}
	}
}

// TestAPIRangeChecks: every number the API takes is range-checked before
// the engine sees it, with the limits in the message.
func TestAPIRangeChecks(t *testing.T) {
	f := newFake()
	_, sock, _ := serve(t, f)
	for _, tc := range []struct {
		method, path, body, msg string
	}{
		{"POST", "/v1/containers", `{"image":"x","resources":{"memory_bytes":4096}}`, "minimum is 6MiB"},
		{"POST", "/v1/containers", `{"image":"x","resources":{"memory_bytes":-1}}`, "must not be negative"},
		{"POST", "/v1/containers", `{"image":"x","resources":{"memory_bytes":9223372036854775807}}`, "maximum is 1PiB"},
		{"POST", "/v1/containers", `{"image":"x","resources":{"memory_bytes":99999999999999999999}}`, "malformed JSON"},
		{"POST", "/v1/containers", `{"image":"x","resources":{"cpus":1e300}}`, "range of CPUs is from 0.01"},
		{"POST", "/v1/containers", `{"image":"x","resources":{"cpus":0.001}}`, "minimum is 0.01"},
		{"POST", "/v1/containers", `{"image":"x","resources":{"cpus":-1}}`, "must not be negative"},
		{"POST", "/v1/containers", `{"image":"x","resources":{"pids_limit":99999999}}`, "maximum is 4194304"},
		{"POST", "/v1/containers", `{"image":"x","restart":{"name":"on-failure","maximum_retry_count":-1}}`, "maximum retry count"},
		{"POST", "/v1/containers", `{"image":"x","health":{"Test":["CMD","true"],"Interval":9223372036854775807}}`, "health check interval"},
		{"POST", "/v1/containers", `{"image":"x","health":{"Test":["CMD","true"],"Retries":-3}}`, "retries"},
		{"POST", "/v1/containers", `{"image":"x","labels":{"":"v"}}`, "empty key"},
		{"POST", "/v1/containers", `{"image":"x","cmd":[""]}`, "first word is empty"},
		{"POST", "/v1/containers", `{"image":"x","name":".."}`, "invalid container name"},
		{"POST", "/v1/containers/web/stop?t=9223372036854775807", "", "from 0 to 2147483647"},
		{"POST", "/v1/containers/web/stop?t=10000000000", "", "from 0 to 2147483647"},
		{"POST", "/v1/containers/web/restart?t=-1", "", "from 0 to 2147483647"},
		{"POST", "/v1/containers/web/kill?signal=65", "", "from 1 to 64"},
		{"POST", "/v1/containers/web/kill?signal=-9", "", "invalid signal"},
		{"POST", "/v1/containers/web/kill?signal=4294967305", "", "invalid signal"},
		{"POST", "/v1/containers/web/resize?w=70000&h=24", "", "from 1 to 65535"},
		{"POST", "/v1/containers/web/attach?w=0&h=24", "", "from 1 to 65535"},
		{"POST", "/v1/containers/web/exec", `{"cmd":["sh"],"width":70000,"height":24}`, "from 1 to 65535"},
		{"GET", "/v1/containers/web/logs?tail=99999999999", "", "invalid tail"},
		{"GET", "/v1/containers/web/logs?since=1e300", "", "invalid time"},
		{"GET", "/v1/events?since=NaN", "", "invalid time"},
		{"GET", "/v1/events?until=Inf", "", "invalid time"},
		{"POST", "/v1/containers", `{"image":"x","name":"` + strings.Repeat("n", 100<<10) + `"}`, "at most 128"},
	} {
		var body io.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		status, er := rawRequest(t, sock, tc.method, tc.path, body)
		if status != http.StatusBadRequest || !strings.Contains(er.Message, tc.msg) {
			t.Errorf("%s %s %.80s: %d %.300q, want 400 saying %q", tc.method, tc.path, tc.body, status, er.Message, tc.msg)
		}
		if len(er.Message) > 512 {
			t.Errorf("%s %s: message of %d bytes echoes the input", tc.method, tc.path, len(er.Message))
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.created) != 0 {
		t.Fatalf("created %d containers from refused requests", len(f.created))
	}
}

// slowUnpackEngine reads the archive to its end (and once more, as readers
// do), then works on it for longer than the body timeout.
type slowUnpackEngine struct {
	Engine
	work time.Duration
}

func (f *slowUnpackEngine) ImportImage(ctx context.Context, r io.Reader) ([]api.Image, error) {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return nil, err
	}
	if n, err := r.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read after the end: %d, %v", n, err)
	}
	timer := time.NewTimer(f.work)
	defer timer.Stop()
	select {
	case <-timer.C:
		return []api.Image{{Ref: "x"}}, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("import cancelled while unpacking: %w", ctx.Err())
	}
}

// TestImportOutlivesBodyTimeout: the body timeout bounds the upload, not
// the unpacking that follows it.
func TestImportOutlivesBodyTimeout(t *testing.T) {
	c, _, _ := serveWith(t, &slowUnpackEngine{work: 300 * time.Millisecond}, Options{Version: "test", BodyTimeout: 50 * time.Millisecond})
	if _, err := c.ImportImage(context.Background(), bytes.NewReader(tarOf(t, 100))); err != nil {
		t.Fatalf("import that unpacks longer than the body timeout: %v", err)
	}
}
