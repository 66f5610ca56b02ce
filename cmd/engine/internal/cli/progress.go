package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/containerd/console"

	"github.com/tendhq/tend/cmd/internal/api"
	"github.com/tendhq/tend/cmd/internal/format"
)

// progressBarWidth is the width of a layer's bar, as docker draws it.
const progressBarWidth = 50

// progressDisplay shows a pull's or push's events: on a terminal one line
// per layer, redrawn in place with a bar, as docker does; otherwise one
// plain line per change of a layer's state.
type progressDisplay struct {
	w    io.Writer
	tty  bool
	ids  []string          // layer lines in order (tty)
	last map[string]string // last status per id (plain)
}

func newProgressDisplay(w io.Writer) *progressDisplay {
	d := &progressDisplay{w: w, last: make(map[string]string)}
	if f, ok := w.(*os.File); ok && isTerminal(f) {
		d.tty = true
	}
	return d
}

func isTerminal(f *os.File) bool {
	_, err := console.ConsoleFromFile(f)
	return err == nil
}

func progressLine(ev api.ProgressEvent, bars bool) string {
	line := ev.Status
	if ev.ID != "" {
		line = ev.ID + ": " + line
	}
	if ev.Detail != nil && ev.Detail.Total > 0 && bars {
		line += " " + ProgressBar(ev.Detail.Current, ev.Detail.Total)
	}
	return line
}

// ProgressBar draws docker's bar: [=====>    ]  1.2MB/5.3MB.
func ProgressBar(cur, total int64) string {
	if total <= 0 {
		return format.HumanSize(cur)
	}
	if cur > total {
		cur = total
	}
	n := int(float64(progressBarWidth) * float64(cur) / float64(total))
	bar := strings.Repeat("=", n)
	if n < progressBarWidth {
		bar += ">" + strings.Repeat(" ", progressBarWidth-n-1)
	}
	return fmt.Sprintf("[%s]  %s/%s", bar, format.HumanSize(cur), format.HumanSize(total))
}

func (d *progressDisplay) show(ev api.ProgressEvent) {
	if !d.tty {
		if ev.ID != "" && d.last[ev.ID] == ev.Status {
			return // byte counts: one line per state
		}
		d.last[ev.ID] = ev.Status
		fmt.Fprintln(d.w, progressLine(ev, false))
		return
	}
	line := progressLine(ev, true)
	if ev.ID == "" {
		fmt.Fprintf(d.w, "%s\n", line)
		d.ids = nil // later lines start below this one
		return
	}
	idx := -1
	for i, id := range d.ids {
		if id == ev.ID {
			idx = i
		}
	}
	if idx < 0 {
		d.ids = append(d.ids, ev.ID)
		fmt.Fprintf(d.w, "%s\n", line)
		return
	}
	up := len(d.ids) - idx
	// Up to the layer's line, clear it, write, back down.
	fmt.Fprintf(d.w, "\x1b[%dA\r\x1b[2K%s\x1b[%dB\r", up, line, up)
}

func (d *progressDisplay) finish() {}

// disableEcho turns off the terminal echo of in while a password is
// typed; the returned func turns it back on. Not a terminal: nothing.
func disableEcho(in io.Reader) (restore func()) {
	f, ok := in.(*os.File)
	if !ok {
		return func() {}
	}
	c, err := console.ConsoleFromFile(f)
	if err != nil || c.DisableEcho() != nil {
		return func() {}
	}
	return func() { _ = c.Reset() }
}
