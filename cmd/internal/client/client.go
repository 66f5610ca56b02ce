// Package client talks to `engine daemon` over its unix socket: one method
// per API route, errors mapped back to their errdefs class, JSON-lines
// streams delivered to callbacks and hijacked streams (attach, exec)
// returned as connections.
//
// A Client is safe for concurrent use. Zero value: not usable; use New.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/cmd/internal/api"
	libcontainerdtypes "github.com/tendhq/tend/libcontainerd/types"
)

// DefaultSocket is where the daemon listens unless told otherwise.
const DefaultSocket = "/run/tend/engine.sock"

// Client is an engine API client.
type Client struct {
	socket string
	http   *http.Client
}

// New returns a client for the daemon listening on socket (a path, or
// unix://path).
func New(socket string) (*Client, error) {
	socket = strings.TrimPrefix(socket, "unix://")
	if socket == "" {
		return nil, fmt.Errorf("empty engine socket path: %w", errdefs.ErrInvalidArgument)
	}
	if strings.Contains(socket, "://") {
		return nil, fmt.Errorf("engine host %q: only unix sockets are supported (unix:///path or a path): %w", socket, errdefs.ErrInvalidArgument)
	}
	c := &Client{socket: socket}
	c.http = &http.Client{
		Transport: &http.Transport{
			DialContext:         func(ctx context.Context, _, _ string) (net.Conn, error) { return c.dial(ctx) },
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
		},
		// A redirect is never followed: a 307 keeps the method, so a
		// DELETE could land on another object. do reports it instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// Socket returns the socket path.
func (c *Client) Socket() string { return c.socket }

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.socket)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("cannot connect to the engine at %s: is `engine daemon` running? %w", c.socket, errdefs.ErrUnavailable)
		}
		if errors.Is(err, syscall.EACCES) {
			return nil, fmt.Errorf("permission denied on the engine socket %s: run as root: %w", c.socket, errdefs.ErrPermissionDenied)
		}
		return nil, err
	}
	return conn, nil
}

// url builds the request URL for path (escaped, under the API version)
// and refuses a path that names no object: an unclean one, or one whose
// container, checkpoint or exec segment is not a valid name or id.
func (c *Client) url(path string, q url.Values) (string, error) {
	if err := checkPath(path); err != nil {
		return "", err
	}
	u := "http://engine/" + api.Version + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u, nil
}

// named maps a route segment to what the segment after it names.
var named = map[string]string{"containers": "container reference", "checkpoints": "checkpoint name", "exec": "exec id"}

func checkPath(path string) error {
	if err := api.CheckPath(path); err != nil {
		return err
	}
	segs := strings.Split(path[1:], "/")
	if segs[0] == "images" {
		return nil
	}
	for i := 1; i < len(segs); i++ {
		what, ok := named[segs[i-1]]
		if !ok {
			continue
		}
		v, err := url.PathUnescape(segs[i])
		if err != nil {
			return err
		}
		if err := api.ValidateName(what, v); err != nil {
			return err
		}
		i++ // the name is not a route word
	}
	return nil
}

// do sends a request and returns the response when its status is 2xx;
// otherwise the daemon's error.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body io.Reader, contentType string) (*http.Response, error) {
	u, err := c.url(path, q)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, err
	}
	if resp.StatusCode/100 == 3 {
		resp.Body.Close()
		return nil, fmt.Errorf("the engine answered %s %s with a redirect (%d) to %s: not followed, it could act on another object: %w",
			method, api.Echo(path), resp.StatusCode, api.Echo(resp.Header.Get("Location")), errdefs.ErrUnknown)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return resp, nil
}

// decodeError reads the daemon's ErrorResponse. A body that is not one is
// never shown raw (it may be JSON cut at the limit): the message says what
// came instead.
func decodeError(resp *http.Response) error {
	var er api.ErrorResponse
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 2*api.MaxErrorMessage))
	if err := json.Unmarshal(b, &er); err != nil || er.Message == "" {
		er = api.ErrorResponse{Message: fmt.Sprintf("the engine answered %d %s without an error message", resp.StatusCode, http.StatusText(resp.StatusCode))}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") && len(b) > 0 && len(b) <= api.MaxEcho {
			er.Message += ": " + strings.TrimSpace(string(b))
		}
	}
	if len(er.Message) > api.MaxErrorMessage {
		er.Message = er.Message[:api.MaxErrorMessage] + "..."
	}
	return api.ErrorFrom(resp.StatusCode, er)
}

// call sends in (when not nil) as JSON and decodes the answer into out
// (when not nil).
func (c *Client) call(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	resp, err := c.do(ctx, method, path, q, body, ct)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode engine response: %w", err)
	}
	return nil
}

// ref is the path of a container; docker's "/name" form names it too.
func ref(r string) string { return "/containers/" + url.PathEscape(strings.TrimPrefix(r, "/")) }

// Version asks the daemon for its version.
func (c *Client) Version(ctx context.Context) (api.VersionInfo, error) {
	var v api.VersionInfo
	return v, c.call(ctx, http.MethodGet, "/version", nil, nil, &v)
}

// Info asks the daemon for a summary of its state.
func (c *Client) Info(ctx context.Context) (api.Info, error) {
	var v api.Info
	return v, c.call(ctx, http.MethodGet, "/info", nil, nil, &v)
}

// Create creates a container.
func (c *Client) Create(ctx context.Context, opts api.CreateOptions) (*api.Container, error) {
	var ct api.Container
	if err := c.call(ctx, http.MethodPost, "/containers", nil, opts, &ct); err != nil {
		return nil, err
	}
	return &ct, nil
}

// List lists containers, newest first.
func (c *Client) List(ctx context.Context, all bool, filters []string) ([]*api.Container, error) {
	return c.ListContainers(ctx, ListOptions{All: all, Filters: filters})
}

// ListOptions select the containers of ListContainers.
type ListOptions struct {
	All     bool
	Filters []string // key=value, as docker's --filter
	Limit   int      // > 0: the newest Limit containers, stopped or not
	Size    bool     // fill in SizeRw and SizeRootFs
}

// ListContainers lists containers, newest first.
func (c *Client) ListContainers(ctx context.Context, o ListOptions) ([]*api.Container, error) {
	q := url.Values{}
	if o.All {
		q.Set("all", "1")
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Size {
		q.Set("size", "1")
	}
	q["filter"] = o.Filters
	var cs []*api.Container
	return cs, c.call(ctx, http.MethodGet, "/containers", q, nil, &cs)
}

// Inspect returns a container record.
func (c *Client) Inspect(ctx context.Context, r string) (*api.Container, error) {
	var ct api.Container
	if err := c.call(ctx, http.MethodGet, ref(r), nil, nil, &ct); err != nil {
		return nil, err
	}
	return &ct, nil
}

// InspectSize returns a container record; with size, SizeRw and
// SizeRootFs are filled in.
func (c *Client) InspectSize(ctx context.Context, r string, size bool) (*api.Container, error) {
	var ct api.Container
	if err := c.call(ctx, http.MethodGet, ref(r), sizeParam(size), nil, &ct); err != nil {
		return nil, err
	}
	return &ct, nil
}

func sizeParam(size bool) url.Values {
	if !size {
		return nil
	}
	return url.Values{"size": {"1"}}
}

// InspectRaw returns the record as the daemon sent it.
func (c *Client) InspectRaw(ctx context.Context, r string, size bool) (json.RawMessage, error) {
	var m json.RawMessage
	return m, c.call(ctx, http.MethodGet, ref(r), sizeParam(size), nil, &m)
}

// Start starts a container.
func (c *Client) Start(ctx context.Context, r string) error {
	return c.call(ctx, http.MethodPost, ref(r)+"/start", nil, nil, nil)
}

// StartFromCheckpoint starts a container by restoring the named
// checkpoint.
func (c *Client) StartFromCheckpoint(ctx context.Context, r, checkpoint string) error {
	return c.call(ctx, http.MethodPost, ref(r)+"/start", url.Values{"checkpoint": {checkpoint}}, nil, nil)
}

// CreateCheckpoint checkpoints a container; without leaveRunning it stops.
func (c *Client) CreateCheckpoint(ctx context.Context, r, name string, leaveRunning bool) error {
	return c.call(ctx, http.MethodPost, ref(r)+"/checkpoints", nil, api.CheckpointCreateOptions{Name: name, LeaveRunning: leaveRunning}, nil)
}

// ListCheckpoints lists a container's checkpoints, oldest first.
func (c *Client) ListCheckpoints(ctx context.Context, r string) ([]api.Checkpoint, error) {
	var cps []api.Checkpoint
	return cps, c.call(ctx, http.MethodGet, ref(r)+"/checkpoints", nil, nil, &cps)
}

// DeleteCheckpoint deletes a checkpoint of a container.
func (c *Client) DeleteCheckpoint(ctx context.Context, r, name string) error {
	return c.call(ctx, http.MethodDelete, ref(r)+"/checkpoints/"+url.PathEscape(name), nil, nil, nil)
}

func timeoutQuery(t *time.Duration) url.Values {
	if t == nil {
		return nil
	}
	return url.Values{"t": {strconv.Itoa(int(t.Seconds()))}}
}

// Stop stops a container: SIGTERM, then SIGKILL after timeout (nil: the
// engine's default).
func (c *Client) Stop(ctx context.Context, r string, timeout *time.Duration) error {
	return c.call(ctx, http.MethodPost, ref(r)+"/stop", timeoutQuery(timeout), nil, nil)
}

// Restart stops and starts a container.
func (c *Client) Restart(ctx context.Context, r string, timeout *time.Duration) error {
	return c.call(ctx, http.MethodPost, ref(r)+"/restart", timeoutQuery(timeout), nil, nil)
}

// Kill sends a signal (a name or number; empty: KILL).
func (c *Client) Kill(ctx context.Context, r, signal string) error {
	q := url.Values{}
	if signal != "" {
		q.Set("signal", signal)
	}
	return c.call(ctx, http.MethodPost, ref(r)+"/kill", q, nil, nil)
}

// Pause freezes a container.
func (c *Client) Pause(ctx context.Context, r string) error {
	return c.call(ctx, http.MethodPost, ref(r)+"/pause", nil, nil, nil)
}

// Unpause thaws a container.
func (c *Client) Unpause(ctx context.Context, r string) error {
	return c.call(ctx, http.MethodPost, ref(r)+"/unpause", nil, nil, nil)
}

// Remove removes a container; force kills it first.
func (c *Client) Remove(ctx context.Context, r string, force bool) error {
	q := url.Values{}
	if force {
		q.Set("force", "1")
	}
	return c.call(ctx, http.MethodDelete, ref(r), q, nil, nil)
}

// Wait waits for the condition (not-running, next-exit, removed) and returns
// the exit code.
func (c *Client) Wait(ctx context.Context, r, condition string) (int, error) {
	q := url.Values{}
	if condition != "" {
		q.Set("condition", condition)
	}
	var w api.WaitResponse
	return w.ExitCode, c.call(ctx, http.MethodPost, ref(r)+"/wait", q, nil, &w)
}

// Resize resizes a container's TTY.
func (c *Client) Resize(ctx context.Context, r string, width, height uint32) error {
	return c.call(ctx, http.MethodPost, ref(r)+"/resize", sizeQuery(width, height), nil, nil)
}

// ResizeExec resizes an exec's TTY.
func (c *Client) ResizeExec(ctx context.Context, id string, width, height uint32) error {
	return c.call(ctx, http.MethodPost, "/exec/"+url.PathEscape(id)+"/resize", sizeQuery(width, height), nil, nil)
}

func sizeQuery(w, h uint32) url.Values {
	return url.Values{"w": {strconv.Itoa(int(w))}, "h": {strconv.Itoa(int(h))}}
}

// Stats reads a container's resource usage.
func (c *Client) Stats(ctx context.Context, r string) (*libcontainerdtypes.Stats, error) {
	var s libcontainerdtypes.Stats
	if err := c.call(ctx, http.MethodGet, ref(r)+"/stats", nil, nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Top lists a container's processes.
func (c *Client) Top(ctx context.Context, r string) ([]api.TopProcess, error) {
	var ps []api.TopProcess
	return ps, c.call(ctx, http.MethodGet, ref(r)+"/top", nil, nil, &ps)
}

// Images lists images.
func (c *Client) Images(ctx context.Context) ([]api.Image, error) {
	var imgs []api.Image
	return imgs, c.call(ctx, http.MethodGet, "/images", nil, nil, &imgs)
}

// ImportImage streams an OCI or docker-archive tar to the daemon.
func (c *Client) ImportImage(ctx context.Context, r io.Reader) ([]api.Image, error) {
	resp, err := c.do(ctx, http.MethodPost, "/images/import", nil, r, "application/x-tar")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var imgs []api.Image
	if err := json.NewDecoder(resp.Body).Decode(&imgs); err != nil {
		return nil, fmt.Errorf("decode engine response: %w", err)
	}
	return imgs, nil
}

// RemoveImage removes an image.
func (c *Client) RemoveImage(ctx context.Context, r string) error {
	if err := api.ValidateImageRef(r); err != nil {
		return err
	}
	return c.call(ctx, http.MethodDelete, "/images/"+api.ImagePath(r), nil, nil, nil)
}

// LogsOptions select the log lines.
type LogsOptions struct {
	Follow bool
	Tail   int // <0: all
	Since  time.Time
	Until  time.Time // zero: no end
	// Details asks for each line's extra attributes (LogRecord.Attrs).
	Details bool
}

// Logs calls fn for each log entry until the log ends (or, with Follow,
// until ctx ends or the container is removed).
func (c *Client) Logs(ctx context.Context, r string, opts LogsOptions, fn func(api.LogRecord) error) error {
	q := url.Values{}
	if opts.Follow {
		q.Set("follow", "1")
	}
	if opts.Tail >= 0 {
		q.Set("tail", strconv.Itoa(opts.Tail))
	}
	if !opts.Since.IsZero() {
		q.Set("since", opts.Since.Format(time.RFC3339Nano))
	}
	if !opts.Until.IsZero() {
		q.Set("until", opts.Until.Format(time.RFC3339Nano))
	}
	if opts.Details {
		q.Set("details", "1")
	}
	return c.stream(ctx, ref(r)+"/logs", q, func(dec *json.Decoder) error {
		var m api.LogMessage
		if err := dec.Decode(&m); err != nil {
			return err
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
		return fn(m.LogRecord)
	})
}

// Events calls fn for each event since since (zero: from now) that passes
// the filters, until ctx ends or until (when not zero).
func (c *Client) Events(ctx context.Context, since, until time.Time, filters []string, fn func(api.Event) error) error {
	q := url.Values{"filter": filters}
	if !since.IsZero() {
		q.Set("since", since.Format(time.RFC3339Nano))
	}
	if !until.IsZero() {
		q.Set("until", until.Format(time.RFC3339Nano))
	}
	return c.stream(ctx, "/events", q, func(dec *json.Decoder) error {
		var m api.EventMessage
		if err := dec.Decode(&m); err != nil {
			return err
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
		return fn(m.Event)
	})
}

// stream reads a JSON-lines response, calling next for each value, and
// returns nil at its end.
func (c *Client) stream(ctx context.Context, path string, q url.Values, next func(*json.Decoder) error) error {
	resp, err := c.do(ctx, http.MethodGet, path, q, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		if err := next(dec); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("the engine closed the stream (did the daemon stop?): %w", err)
			}
			return err
		}
	}
}

// Stream is a hijacked attach or exec connection: frames from the daemon,
// raw input to it.
type Stream struct {
	conn net.Conn
	br   *bufio.Reader
}

// Read reads the framed output; see api.ReadFrames.
func (s *Stream) Read(p []byte) (int, error) { return s.br.Read(p) }

// Write sends raw input.
func (s *Stream) Write(p []byte) (int, error) { return s.conn.Write(p) }

// CloseWrite tells the daemon the input ended (the process reads EOF).
func (s *Stream) CloseWrite() error {
	if cw, ok := s.conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close closes the connection.
func (s *Stream) Close() error { return s.conn.Close() }

// hijack sends a request asking for a raw stream and returns it once the
// daemon answered 101; any other answer is the daemon's error. Ending ctx
// closes the stream.
func (c *Client) hijack(ctx context.Context, path string, q url.Values, in any) (*Stream, error) {
	var body io.Reader = http.NoBody
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	u, err := c.url(path, q)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	if err := req.Write(conn); err != nil {
		stop()
		conn.Close()
		return nil, fmt.Errorf("send request: %w", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		stop()
		conn.Close()
		return nil, fmt.Errorf("read engine response: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer conn.Close()
		stop()
		return nil, decodeError(resp)
	}
	return &Stream{conn: conn, br: br}, nil
}

// AttachOptions say what to attach and whether to start the container.
type AttachOptions struct {
	Stdin bool
	Start bool
	// Width and Height are the terminal size to apply once the container
	// runs (0: none).
	Width, Height uint32
}

// Attach attaches to a container's init process.
func (c *Client) Attach(ctx context.Context, r string, opts AttachOptions) (*Stream, error) {
	q := url.Values{}
	if opts.Stdin {
		q.Set("stdin", "1")
	}
	if opts.Start {
		q.Set("start", "1")
	}
	if opts.Width > 0 && opts.Height > 0 {
		q.Set("w", strconv.Itoa(int(opts.Width)))
		q.Set("h", strconv.Itoa(int(opts.Height)))
	}
	return c.hijack(ctx, ref(r)+"/attach", q, nil)
}

// Exec starts a process in a running container.
func (c *Client) Exec(ctx context.Context, r string, cfg api.ExecConfig) (*Stream, error) {
	return c.hijack(ctx, ref(r)+"/exec", nil, cfg)
}
