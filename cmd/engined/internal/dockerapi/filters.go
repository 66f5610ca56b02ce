package dockerapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"

	"github.com/tendhq/tend/cmd/internal/api"
)

// filters is the ?filters= argument of Docker's list routes: a JSON object
// of key to set of values ({"status":{"running":true}}), or the older
// key to list ({"status":["running"]}).
type filters map[string]map[string]bool

func parseFilters(raw string) (filters, error) {
	f := filters{}
	if raw == "" {
		return f, nil
	}
	if err := json.Unmarshal([]byte(raw), &f); err == nil {
		return f, nil
	}
	var old map[string][]string
	if err := json.Unmarshal([]byte(raw), &old); err != nil {
		return nil, fmt.Errorf("invalid filters %s: want a JSON object of key to values: %w", api.Echo(raw), errdefs.ErrInvalidArgument)
	}
	for k, vs := range old {
		f[k] = map[string]bool{}
		for _, v := range vs {
			f[k][v] = true
		}
	}
	return f, nil
}

// only refuses keys not among allowed, naming them.
func (f filters) only(allowed ...string) error {
	for k := range f {
		known := false
		for _, a := range allowed {
			known = known || a == k
		}
		if !known {
			return fmt.Errorf("invalid filter %s: this route filters on %s: %w", api.Echo(k), strings.Join(allowed, ", "), errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// match reports whether v is among the values of key, or key is absent.
func (f filters) match(key, v string) bool {
	vs := f[key]
	return len(vs) == 0 || vs[v]
}

func (f filters) values(key string) []string {
	var out []string
	for v := range f[key] {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// familiarImage renders a normalized reference as docker shows it:
// docker.io/library/busybox:latest is busybox:latest.
func familiarImage(ref string) string {
	if ref == "" {
		return ""
	}
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return reference.FamiliarString(n)
}

// lineWriter writes a stream of JSON values, one per line, each flushed
// and within a write deadline: a client that stops reading is cut off.
type lineWriter struct {
	enc *json.Encoder
	rc  *http.ResponseController
}

func newLineWriter(w http.ResponseWriter, rc *http.ResponseController) *lineWriter {
	return &lineWriter{enc: json.NewEncoder(w), rc: rc}
}

func (l *lineWriter) send(v any) error {
	_ = l.rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if err := l.enc.Encode(v); err != nil {
		return err
	}
	return l.rc.Flush()
}

func jsonMarshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func contains(s, sub string) bool { return strings.Contains(strings.ToLower(s), sub) }
