package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/cmd/internal/api"
	"github.com/tendhq/tend/cmd/internal/client"
)

// fakeEngine embeds the interface (calls it does not override panic) and
// overrides what the tests use.
type fakeEngine struct {
	Engine

	mu         sync.Mutex
	containers map[string]*api.Container
	created    []api.CreateOptions
	started    []string

	// events are replayed, then the stream blocks until ctx ends;
	// eventsDone is closed when Events returns.
	events     []api.Event
	eventsDone chan struct{}

	attachOut string // written to stdout by Attach
	exitCode  int
	stdinSeen chan string
}

func newFake() *fakeEngine {
	return &fakeEngine{
		containers: map[string]*api.Container{"abc123": {ID: "abc123", Name: "web", State: api.StateRunning}},
		eventsDone: make(chan struct{}),
		stdinSeen:  make(chan string, 1),
	}
}

func (f *fakeEngine) resolve(ref string) (*api.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, c := range f.containers {
		if id == ref || c.Name == ref || (ref != "" && strings.HasPrefix(id, ref)) {
			cc := *c
			return &cc, nil
		}
	}
	return nil, fmt.Errorf("No such container: %s: %w", ref, errdefs.ErrNotFound)
}

func (f *fakeEngine) Create(_ context.Context, o api.CreateOptions) (*api.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.containers {
		if c.Name == o.Name {
			return nil, fmt.Errorf("container name %q is already in use: %w", o.Name, errdefs.ErrAlreadyExists)
		}
	}
	f.created = append(f.created, o)
	c := &api.Container{ID: fmt.Sprintf("id%d", len(f.created)), Name: o.Name, Config: o, State: api.StateCreated}
	f.containers[c.ID] = c
	return c, nil
}

func (f *fakeEngine) Inspect(_ context.Context, ref string) (*api.Container, error) {
	return f.resolve(ref)
}

func (f *fakeEngine) Start(_ context.Context, ref string) error {
	c, err := f.resolve(ref)
	if err != nil {
		return err
	}
	if c.State == api.StateRunning {
		return fmt.Errorf("container %s is already running: %w", ref, errdefs.ErrFailedPrecondition)
	}
	f.mu.Lock()
	f.started = append(f.started, c.ID)
	f.containers[c.ID].State = api.StateRunning
	f.mu.Unlock()
	return nil
}

func (f *fakeEngine) Kill(_ context.Context, ref string, sig syscall.Signal) error {
	if _, err := f.resolve(ref); err != nil {
		return err
	}
	if sig != syscall.SIGHUP {
		return fmt.Errorf("fake wants SIGHUP, got %v: %w", sig, errdefs.ErrInvalidArgument)
	}
	return nil
}

func (f *fakeEngine) Info(context.Context) (api.Info, error) {
	return api.Info{ContainerdVersion: "1.6.20", Namespace: "test"}, nil
}

func (f *fakeEngine) Events(ctx context.Context, since time.Time, filter func(api.Event) bool, fn func(api.Event) error) error {
	defer close(f.eventsDone)
	for _, e := range f.events {
		if filter != nil && !filter(e) {
			continue
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return ctx.Err()
}

func (f *fakeEngine) Attach(ctx context.Context, ref string, o AttachOptions) (func(), error) {
	if _, err := f.resolve(ref); err != nil {
		return nil, err
	}
	io.WriteString(o.Stdout, f.attachOut)
	io.WriteString(o.Stderr, "err\n")
	if o.Stdin != nil {
		go func() {
			b, _ := io.ReadAll(o.Stdin)
			f.stdinSeen <- string(b)
		}()
	}
	return func() {}, nil
}

func (f *fakeEngine) Wait(ctx context.Context, ref string, cond api.WaitCondition) (int, error) {
	if _, err := f.resolve(ref); err != nil {
		return 0, err
	}
	if f.stdinSeen != nil && f.attachOut == "stdin" {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case s := <-f.stdinSeen:
			return len(s), nil
		}
	}
	return f.exitCode, nil
}

// serve starts a Server for e on a socket in a temp dir.
func serve(t *testing.T, e Engine) (*client.Client, string, func()) {
	t.Helper()
	return serveWith(t, e, Options{Version: "test"})
}

// serveWith is serve with options.
func serveWith(t *testing.T, e Engine, opts Options) (*client.Client, string, func()) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "e.sock")
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(e, opts).Serve(ctx, l) }()
	c, err := client.New(sock)
	if err != nil {
		t.Fatal(err)
	}
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}
	t.Cleanup(func() {
		c.Close()
		if ctx.Err() == nil {
			stop()
		}
	})
	return c, sock, stop
}

// rawRequest sends raw HTTP on the socket and returns status and body.
func rawRequest(t *testing.T, sock, method, path string, body io.Reader) (int, api.ErrorResponse) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequest(method, "http://engine"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var er api.ErrorResponse
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(b, &er); err != nil {
			t.Fatalf("%s %s: status %d, body %q is not a JSON error: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode, er
}

func TestAPIErrors(t *testing.T) {
	f := newFake()
	_, sock, _ := serve(t, f)
	huge := bytes.Repeat([]byte(" "), api.MaxJSONBody+10)
	for _, tc := range []struct {
		name         string
		method, path string
		body         io.Reader
		status       int
		class        string
		msg          string
	}{
		{"unknown route", "GET", "/v1/nope", nil, 404, "not found", "no route for GET /v1/nope"},
		{"unversioned", "GET", "/containers", nil, 404, "not found", "no route"},
		{"wrong method", "PUT", "/v1/containers", nil, 405, "invalid argument", "method \"PUT\" is not allowed"},
		{"malformed JSON", "POST", "/v1/containers", strings.NewReader(`{"name":`), 400, "invalid argument", "malformed JSON"},
		{"unknown field", "POST", "/v1/containers", strings.NewReader(`{"nmae":"x"}`), 400, "invalid argument", "unknown field"},
		{"two values", "POST", "/v1/containers", strings.NewReader(`{} {}`), 400, "invalid argument", "more than one"},
		{"huge body", "POST", "/v1/containers", bytes.NewReader(huge), 413, "invalid argument", "larger than the limit"},
		{"unknown container", "GET", "/v1/containers/nosuch", nil, 404, "not found", "No such container: nosuch"},
		{"already running", "POST", "/v1/containers/web/start", nil, 409, "failed precondition", "already running"},
		{"bad signal", "POST", "/v1/containers/web/kill?signal=BOGUS", nil, 400, "invalid argument", "invalid signal"},
		{"bad timeout", "POST", "/v1/containers/web/stop?t=-3", nil, 400, "invalid argument", "invalid timeout"},
		{"bad filter", "GET", "/v1/events?filter=nokey", nil, 400, "invalid argument", "invalid filter"},
		{"attach without upgrade", "POST", "/v1/containers/web/attach", nil, 400, "invalid argument", "Upgrade"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, er := rawRequest(t, sock, tc.method, tc.path, tc.body)
			if status != tc.status || er.Class != tc.class || !strings.Contains(er.Message, tc.msg) {
				t.Errorf("got %d %+v, want %d class %q message containing %q", status, er, tc.status, tc.class, tc.msg)
			}
			if strings.HasSuffix(er.Message, ": "+tc.class) {
				t.Errorf("message %q repeats its class", er.Message)
			}
		})
	}
	// The daemon still serves after all of that.
	if status, _ := rawRequest(t, sock, "GET", "/v1/info", nil); status != 200 {
		t.Fatalf("info after errors: status %d", status)
	}
}

func TestClientMapsErrorClasses(t *testing.T) {
	f := newFake()
	c, _, _ := serve(t, f)
	ctx := context.Background()
	if _, err := c.Inspect(ctx, "nosuch"); !errdefs.IsNotFound(err) || err.Error() != "No such container: nosuch" {
		t.Errorf("inspect unknown: %v (not found: %v)", err, errdefs.IsNotFound(err))
	}
	if _, err := c.Create(ctx, api.CreateOptions{Name: "web"}); !errdefs.IsAlreadyExists(err) {
		t.Errorf("duplicate name: %v, want AlreadyExists", err)
	}
	if err := c.Start(ctx, "web"); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("start running: %v, want FailedPrecondition", err)
	}
	if err := c.Kill(ctx, "web", "hup"); err != nil {
		t.Errorf("kill -s hup: %v", err)
	}
	if err := c.Kill(ctx, "web", "1"); err != nil {
		t.Errorf("kill -s 1: %v", err)
	}
	if err := c.Kill(ctx, "web", "TERM"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("kill TERM to the fake: %v, want InvalidArgument", err)
	}
	ct, err := c.Create(ctx, api.CreateOptions{Name: "new", Cmd: []string{"sh"}, Labels: map[string]string{"a": "b"}})
	if err != nil || ct.Name != "new" || ct.Config.Labels["a"] != "b" {
		t.Fatalf("create: %+v, %v", ct, err)
	}
}

func TestClientDisconnectMidStream(t *testing.T) {
	f := newFake()
	f.events = []api.Event{{Type: "start", ContainerID: "abc123", Name: "web"}, {Type: "die", ContainerID: "abc123", Name: "web"}}
	c, _, _ := serve(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan api.Event, 10)
	errc := make(chan error, 1)
	go func() {
		errc <- c.Events(ctx, time.Time{}, time.Time{}, []string{"event=die", "type=container"}, func(e api.Event) error { got <- e; return nil })
	}()
	select {
	case e := <-got:
		if e.Type != "die" {
			t.Fatalf("filter event=die let %+v through", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Events after cancel: %v", err)
	}
	// The daemon notices the client is gone and ends the engine's stream.
	select {
	case <-f.eventsDone:
	case <-time.After(10 * time.Second):
		t.Fatal("engine event stream still running after the client disconnected")
	}
	if _, err := c.Info(context.Background()); err != nil {
		t.Fatalf("daemon stopped serving after a client disconnected: %v", err)
	}
}

func TestAttachStream(t *testing.T) {
	f := newFake()
	f.attachOut = "hello\n"
	f.exitCode = 3
	c, _, _ := serve(t, f)
	ctx := context.Background()
	st, err := c.Attach(ctx, "web", client.AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var out, errb bytes.Buffer
	status, err := api.ReadFrames(st, &out, &errb, nil)
	if err != nil || !status.Exited || status.ExitCode != 3 {
		t.Fatalf("status %+v, %v", status, err)
	}
	if out.String() != "hello\n" || errb.String() != "err\n" {
		t.Fatalf("stdout %q stderr %q", out.String(), errb.String())
	}
	if _, err := c.Attach(ctx, "nosuch", client.AttachOptions{}); !errdefs.IsNotFound(err) {
		t.Fatalf("attach unknown: %v", err)
	}
}

func TestAttachStdin(t *testing.T) {
	f := newFake()
	f.attachOut = "stdin"
	c, _, _ := serve(t, f)
	st, err := c.Attach(context.Background(), "web", client.AttachOptions{Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := io.WriteString(st, "four"); err != nil {
		t.Fatal(err)
	}
	if err := st.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	status, err := api.ReadFrames(st, io.Discard, io.Discard, nil)
	if err != nil || status.ExitCode != 4 {
		t.Fatalf("status %+v, %v: want the 4 bytes of stdin as exit code", status, err)
	}
}

func TestShutdownEndsStreams(t *testing.T) {
	f := newFake()
	c, _, stop := serve(t, f)
	errc := make(chan error, 1)
	subscribed := make(chan struct{})
	f.events = []api.Event{{Type: "start"}}
	go func() {
		errc <- c.Events(context.Background(), time.Time{}, time.Time{}, nil, func(api.Event) error {
			close(subscribed)
			return nil
		})
	}()
	<-subscribed
	stop()
	select {
	case <-errc:
	case <-time.After(10 * time.Second):
		t.Fatal("event stream survived the server's shutdown")
	}
}

func TestListenRefusesLiveSocket(t *testing.T) {
	_, sock, _ := serve(t, newFake())
	if _, err := Listen(sock); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("second Listen on a live socket: %v", err)
	}
}

// docker's event filters: type is the object type, event the action.
func TestEventFilterDockerKeys(t *testing.T) {
	die := api.Event{Type: "die", ContainerID: "abc123", Name: "web", Attributes: map[string]string{"image": "busybox", "app": "x", "name": "web"}}
	img := api.Event{Type: "pull", Kind: "image", ContainerID: "busybox"}
	for _, tc := range []struct {
		filters []string
		die     bool
		img     bool
	}{
		{[]string{"type=container"}, true, false},
		{[]string{"type=image"}, false, true},
		{[]string{"event=die"}, true, false},
		{[]string{"event=start"}, false, false},
		{[]string{"container=web"}, true, false},
		{[]string{"container=abc"}, true, false},
		{[]string{"image=busybox"}, true, false},
		{[]string{"image=docker.io/library/busybox:latest"}, true, false},
		{[]string{"label=app"}, true, false},
		{[]string{"label=app=y"}, false, false},
		{[]string{"type=container", "event=die", "label=app=x"}, true, false},
	} {
		f, err := EventFilter(tc.filters)
		if err != nil {
			t.Fatalf("EventFilter(%v): %v", tc.filters, err)
		}
		if f(die) != tc.die || f(img) != tc.img {
			t.Errorf("EventFilter(%v): die %v image %v, want %v %v", tc.filters, f(die), f(img), tc.die, tc.img)
		}
	}
	if _, err := EventFilter([]string{"type=die"}); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "event=die") {
		t.Errorf("type=die: %v, want an invalid argument that points to event=die", err)
	}
}
