package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tendhq/tend/cmd/internal/api"
)

// pullEvents is a pull of two layers as the daemon streams it.
func pullEvents() []api.ProgressEvent {
	dl := func(id string, cur, total int64) api.ProgressEvent {
		return api.ProgressEvent{ID: id, Status: "Downloading", Detail: &api.ProgressDetail{Current: cur, Total: total}}
	}
	return []api.ProgressEvent{
		{ID: "v1", Status: "Pulling from team/app"},
		{ID: "aaaaaaaaaaaa", Status: "Pulling fs layer"},
		{ID: "bbbbbbbbbbbb", Status: "Already exists"},
		dl("aaaaaaaaaaaa", 1<<20, 4<<20),
		dl("aaaaaaaaaaaa", 2<<20, 4<<20),
		dl("aaaaaaaaaaaa", 4<<20, 4<<20),
		{ID: "aaaaaaaaaaaa", Status: "Download complete"},
		{ID: "aaaaaaaaaaaa", Status: "Extracting"},
		{ID: "aaaaaaaaaaaa", Status: "Pull complete"},
		{Status: "Digest: sha256:0123"},
		{Status: "Status: Downloaded newer image for registry:5000/team/app:v1"},
	}
}

// TestProgressPlainLines: not a terminal, one line per change of a
// layer's state, byte counts folded into their state's one line, no
// escape sequences.
func TestProgressPlainLines(t *testing.T) {
	var buf bytes.Buffer
	d := newProgressDisplay(&buf)
	if d.tty {
		t.Fatal("a buffer is taken for a terminal")
	}
	for _, ev := range pullEvents() {
		d.show(ev)
	}
	want := `v1: Pulling from team/app
aaaaaaaaaaaa: Pulling fs layer
bbbbbbbbbbbb: Already exists
aaaaaaaaaaaa: Downloading
aaaaaaaaaaaa: Download complete
aaaaaaaaaaaa: Extracting
aaaaaaaaaaaa: Pull complete
Digest: sha256:0123
Status: Downloaded newer image for registry:5000/team/app:v1
`
	if got := buf.String(); got != want {
		t.Errorf("plain progress:\n%s\nwant:\n%s", got, want)
	}
}

// TestProgressTerminal: one line per layer, redrawn in place with docker's
// bar and byte counts.
func TestProgressTerminal(t *testing.T) {
	var buf bytes.Buffer
	d := &progressDisplay{w: &buf, tty: true, last: make(map[string]string)}
	for _, ev := range pullEvents()[:5] {
		d.show(ev)
	}
	out := buf.String()
	for _, want := range []string{
		"v1: Pulling from team/app\n",
		"aaaaaaaaaaaa: Pulling fs layer\n",
		"bbbbbbbbbbbb: Already exists\n",
		// The first of the two layer lines: up two lines, clear, redraw, two down.
		"\x1b[2A\r\x1b[2Kaaaaaaaaaaaa: Downloading [============>                                     ]  1.049MB/4.194MB\x1b[2B\r",
		"aaaaaaaaaaaa: Downloading [=========================>                        ]  2.097MB/4.194MB",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal progress %q lacks %q", out, want)
		}
	}
}

func TestProgressBar(t *testing.T) {
	for _, c := range []struct {
		cur, total int64
		want       string
	}{
		{0, 100, "[>" + strings.Repeat(" ", 49) + "]  0B/100B"},
		{100, 100, "[" + strings.Repeat("=", 50) + "]  100B/100B"},
		{150, 100, "[" + strings.Repeat("=", 50) + "]  100B/100B"},
		{5, 0, "5B"},
	} {
		if got := ProgressBar(c.cur, c.total); got != c.want {
			t.Errorf("ProgressBar(%d, %d) = %q, want %q", c.cur, c.total, got, c.want)
		}
	}
}
