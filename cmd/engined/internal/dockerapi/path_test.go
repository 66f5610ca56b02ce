package dockerapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// unreachableEngine fails the test on any engine call: every request of
// TestUncleanPathsAreRefused must be refused before the engine sees it.
type unreachableEngine struct{ Engine }

// dockerRouteValues are the concrete values put in a route's wildcards.
var dockerRouteValues = strings.NewReplacer(
	"{ref}", "C", "{id}", "exec1", "{name...}", "busybox", "{name}", "vol1", "{network}", "net1")

// uncleanPaths derives from path the ways of naming another object through
// it: dot segments, plain and percent-encoded, appended or in place of each
// segment; encoded slashes; empty segments.
func uncleanPaths(path string) []string {
	var out []string
	for _, tail := range []string{"/.", "/..", "/%2e", "/%2e%2e", "/%2E%2E", "/..%2f..", "/", "//x"} {
		out = append(out, path+tail)
	}
	segs := strings.Split(path, "/")
	for i := 1; i < len(segs); i++ {
		for _, bad := range []string{".", "..", "%2e", "%2e%2e", "a%2fb", "%2F", "a%5Cb", ""} {
			s := append([]string(nil), segs...)
			s[i] = bad
			out = append(out, strings.Join(s, "/"))
		}
	}
	return append(out, "/"+path, "/../"+strings.TrimPrefix(path, "/"))
}

// TestUncleanPathsAreRefused: every route of the Docker API, bare and under
// a version prefix, answers an unclean path with a 400, never a redirect,
// and never reaches the engine.
func TestUncleanPathsAreRefused(t *testing.T) {
	s := New(unreachableEngine{}, Options{Version: "test"})
	defer s.cancel()
	if len(s.patterns) < 50 {
		t.Fatalf("only %d routes registered", len(s.patterns))
	}
	n := 0
	for _, p := range s.patterns {
		method, path, _ := strings.Cut(p, " ")
		path = dockerRouteValues.Replace(path)
		if strings.ContainsAny(path, "{}") {
			t.Fatalf("route %q has a wildcard dockerRouteValues does not fill", p)
		}
		for _, prefix := range []string{"", "/v" + APIVersion} {
			for _, u := range uncleanPaths(path) {
				n++
				target := prefix + u
				code, loc, err := serveOne(s, method, target)
				if err != nil {
					t.Errorf("%s %s: %v", method, target, err)
					continue
				}
				if code != http.StatusBadRequest {
					t.Errorf("%s %s: status %d, want 400", method, target, code)
				}
				if loc != "" {
					t.Errorf("%s %s: redirected to %s", method, target, loc)
				}
			}
		}
	}
	if n < len(s.patterns)*2*16 {
		t.Fatalf("only %d paths tried", n)
	}
}

// serveOne runs one request through s and turns an engine call (a panic of
// unreachableEngine's nil interface) into an error.
func serveOne(s *Server, method, target string) (code int, location string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the request reached the engine: %v", r)
		}
	}()
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest(method, target, nil))
	return w.Code, w.Header().Get("Location"), nil
}
