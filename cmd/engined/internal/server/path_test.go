package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/cmd/internal/api"
	"github.com/tendhq/tend/cmd/internal/client"
)

// pathEngine has one container, C, with one checkpoint, cp1, and records
// every removal. Calls it does not override panic (the embedded interface
// is nil), which breaks the connection: a request that reaches the engine
// cannot pass for a refused one.
type pathEngine struct {
	Engine

	mu      sync.Mutex
	removed []string
}

func (f *pathEngine) Inspect(_ context.Context, ref string) (*api.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.removed {
		if r == "container "+ref {
			return nil, fmt.Errorf("No such container: %s: %w", ref, errdefs.ErrNotFound)
		}
	}
	if ref != "C" {
		return nil, fmt.Errorf("No such container: %s: %w", ref, errdefs.ErrNotFound)
	}
	return &api.Container{ID: "C", Name: "C"}, nil
}

func (f *pathEngine) Remove(_ context.Context, ref string, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, "container "+ref)
	return nil
}

func (f *pathEngine) DeleteCheckpoint(_ context.Context, ref, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, "checkpoint "+ref+"/"+name)
	return nil
}

// sendRaw writes one request with path exactly as given (no client
// cleaning or escaping) and returns the response and its decoded error.
func sendRaw(t *testing.T, sock, method, path string) (*http.Response, api.ErrorResponse) {
	t.Helper()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: engine\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", method, path); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: no response (did the request reach the engine?): %v", method, path, err)
	}
	defer resp.Body.Close()
	var er api.ErrorResponse
	if resp.StatusCode >= 400 {
		if err := json.NewDecoder(resp.Body).Decode(&er); err != nil {
			t.Fatalf("%s %s: status %d without a JSON error: %v", method, path, resp.StatusCode, err)
		}
	}
	return resp, er
}

// routeValues are the concrete values the tests put in a route's wildcards.
var routeValues = strings.NewReplacer(
	"{ref}", "C", "{name}", "cp1", "{id}", "exec1", "{network}", "net1", "{volume}", "vol1", "{image...}", "busybox")

// routes are every route the server registers, with concrete values in
// their wildcards: a route added later is tried without being listed here.
func routes(t *testing.T) []struct{ method, path string } {
	t.Helper()
	s := New(&pathEngine{}, Options{Version: "test"})
	s.cancel()
	var out []struct{ method, path string }
	for _, p := range s.patterns {
		method, path, ok := strings.Cut(p, " ")
		if !ok || !strings.HasPrefix(path, "/") {
			t.Fatalf("route %q: want METHOD /path", p)
		}
		path = routeValues.Replace(path)
		if strings.ContainsAny(path, "{}") {
			t.Fatalf("route %q has a wildcard routeValues does not fill", p)
		}
		out = append(out, struct{ method, path string }{method, path})
	}
	// The routes of the issue that named the hole, and one of each later
	// family, must be among them.
	for _, want := range []string{"DELETE /v1/containers/C/checkpoints/cp1", "DELETE /v1/images/busybox", "DELETE /v1/networks/net1", "DELETE /v1/volumes/vol1", "PUT /v1/containers/C/archive", "POST /v1/images/pull"} {
		found := false
		for _, r := range out {
			found = found || r.method+" "+r.path == want
		}
		if !found {
			t.Fatalf("route %s not registered; routes: %v", want, out)
		}
	}
	return out
}

// uncleanVariants derives from path every way of smuggling another object
// into it: dot segments (plain and percent-encoded) appended or in place of
// each segment after /v1, encoded slashes, and empty segments.
func uncleanVariants(path string) []string {
	var out []string
	for _, tail := range []string{"/.", "/..", "/%2e", "/%2e%2e", "/%2E%2E", "/..%2f..", "/", "//x"} {
		out = append(out, path+tail)
	}
	segs := strings.Split(path, "/") // "", "v1", ...
	for i := 2; i < len(segs); i++ {
		for _, bad := range []string{".", "..", "%2e", "%2e%2e", "a%2fb", "%2F", "a%5Cb", ""} {
			s := append([]string(nil), segs...)
			s[i] = bad
			out = append(out, strings.Join(s, "/"))
		}
	}
	out = append(out, "/"+path, strings.Replace(path, "/v1/", "/v1//", 1), "/v1/../"+strings.TrimPrefix(path, "/v1/"))
	return out
}

func TestUncleanPathsAreRefused(t *testing.T) {
	f := &pathEngine{}
	_, sock, _ := serve(t, f)
	n, all := 0, routes(t)
	for _, rt := range all {
		for _, p := range uncleanVariants(rt.path) {
			n++
			resp, er := sendRaw(t, sock, rt.method, p)
			if resp.StatusCode != http.StatusBadRequest || er.Class != errdefs.ErrInvalidArgument.Error() {
				t.Errorf("%s %s: got %d %+v, want 400 invalid argument", rt.method, p, resp.StatusCode, er)
			}
			if loc := resp.Header.Get("Location"); loc != "" {
				t.Errorf("%s %s: redirected to %s", rt.method, p, loc)
			}
		}
	}
	if n < len(all)*20 {
		t.Fatalf("only %d variants tried", n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.removed) > 0 {
		t.Fatalf("unclean requests acted on %v", f.removed)
	}
}

// TestCheckpointRemoveDotDotKeepsContainer is the request that used to
// remove container C: DELETE .../checkpoints/.. cleaned and redirected to
// DELETE /v1/containers/C.
func TestCheckpointRemoveDotDotKeepsContainer(t *testing.T) {
	f := &pathEngine{}
	c, sock, _ := serve(t, f)
	ctx := context.Background()
	for _, p := range []string{"/v1/containers/C/checkpoints/..", "/v1/containers/C/checkpoints/%2e%2e", "/v1/containers/C/checkpoints/./.."} {
		if resp, _ := sendRaw(t, sock, "DELETE", p); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("DELETE %s: status %d, want 400", p, resp.StatusCode)
		}
	}
	// The client refuses before it sends.
	for _, name := range []string{"..", ".", "a/b", "", strings.Repeat("x", 200)} {
		if err := c.DeleteCheckpoint(ctx, "C", name); !errdefs.IsInvalidArgument(err) {
			t.Errorf("DeleteCheckpoint(C, %q): %v, want invalid argument", name, err)
		}
	}
	for _, ref := range []string{"..", ".", "../C", "C/..", "-x"} {
		if err := c.Remove(ctx, ref, true); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Remove(%q): %v, want invalid argument", ref, err)
		}
		if _, err := c.Inspect(ctx, ref); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Inspect(%q): %v, want invalid argument", ref, err)
		}
	}
	if _, err := c.Inspect(ctx, "C"); err != nil {
		t.Fatalf("container C after the refused requests: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.removed) > 0 {
		t.Fatalf("refused requests acted on %v", f.removed)
	}
}

// TestInvalidNamesAreRefused: a clean path whose object cannot exist gets
// 400 before the engine sees it.
func TestInvalidNamesAreRefused(t *testing.T) {
	_, sock, _ := serve(t, &pathEngine{})
	long := strings.Repeat("a", 129)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/v1/containers/-C"},
		{"GET", "/v1/containers/" + long},
		{"DELETE", "/v1/containers/C%20x"},
		{"DELETE", "/v1/containers/C/checkpoints/_cp"},
		{"POST", "/v1/exec/ex%24/resize"},
		{"DELETE", "/v1/images/UPPER"},
		{"DELETE", "/v1/images/busybox:"},
		{"POST", "/v1/containers/C/start?checkpoint=.."},
		{"GET", "/v1/networks/-n"},
		{"DELETE", "/v1/networks/" + long},
		{"GET", "/v1/volumes/-v"},
		{"DELETE", "/v1/volumes/v%20x"},
		{"GET", "/v1/images/UPPER"},
		{"PUT", "/v1/containers/-C/archive"},
	} {
		resp, er := sendRaw(t, sock, tc.method, tc.path)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s %s: got %d %+v, want 400", tc.method, tc.path, resp.StatusCode, er)
		}
		if len(er.Message) > 256 {
			t.Errorf("%s %s: message of %d bytes echoes the input", tc.method, tc.path, len(er.Message))
		}
	}
}

// TestClientDoesNotFollowRedirects: a daemon that redirects gets an error
// back, and the redirect's target is never asked.
func TestClientDoesNotFollowRedirects(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "r.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var hits []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits = append(hits, r.Method+" "+r.URL.Path)
		mu.Unlock()
		http.Redirect(w, r, "/v1/containers/C", http.StatusTemporaryRedirect)
	})}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	c, err := client.New(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.DeleteCheckpoint(context.Background(), "C", "cp1")
	if err == nil || !strings.Contains(err.Error(), "redirect") {
		t.Fatalf("DeleteCheckpoint against a redirecting daemon: %v, want a redirect error", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hits) != 1 || hits[0] != "DELETE /v1/containers/C/checkpoints/cp1" {
		t.Fatalf("requests seen: %v, want only the checkpoint delete", hits)
	}
}

// TestClientNeverPrintsRawBodies: an error body that is not an error
// document (a proxy's HTML, JSON cut at a limit) becomes a message that
// says so, never the raw body.
func TestClientNeverPrintsRawBodies(t *testing.T) {
	for _, tc := range []struct {
		name, ct, body string
		status         int
	}{
		{"cut JSON", "application/json", `{"message":"` + strings.Repeat("x", 100<<10), 400},
		{"JSON without message", "application/json", `{"error":"x"}`, 500},
		{"html", "text/html", "<html>" + strings.Repeat("y", 1000) + "</html>", 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "r.sock")
			l, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ct)
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			})}
			done := make(chan error, 1)
			go func() { done <- srv.Serve(l) }()
			defer func() {
				srv.Close()
				<-done
			}()
			c, err := client.New(sock)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.Info(context.Background())
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if strings.ContainsAny(msg, "{<") || len(msg) > 256 || !strings.Contains(msg, fmt.Sprint(tc.status)) {
				t.Fatalf("error %q: want a short message naming status %d, not the body", msg, tc.status)
			}
		})
	}
}
