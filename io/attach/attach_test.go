package attach

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/fifo"

	"github.com/tendhq/tend/internal/testutil"
)

// fixture is one process's FIFOs: our ends opened like the engine does, and
// the container ends opened like the shim does.
type fixture struct {
	cfg              cio.Config
	stdin            io.WriteCloser
	stdout, stderr   io.ReadCloser
	cStdin           *os.File
	cStdout, cStderr *os.File
}

func newFixture(t *testing.T, openContainerEnds bool) *fixture {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	f := &fixture{cfg: cio.Config{
		Stdin:  filepath.Join(dir, "stdin"),
		Stdout: filepath.Join(dir, "stdout"),
		Stderr: filepath.Join(dir, "stderr"),
	}}
	open := func(p string, flag int) io.ReadWriteCloser {
		rw, err := fifo.OpenFifo(ctx, p, flag|syscall.O_CREAT|syscall.O_NONBLOCK, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		return rw
	}
	f.stdin = open(f.cfg.Stdin, syscall.O_WRONLY)
	f.stdout = open(f.cfg.Stdout, syscall.O_RDONLY)
	f.stderr = open(f.cfg.Stderr, syscall.O_RDONLY)
	if openContainerEnds {
		var err error
		// Plain os.File ends are pollable, so tests can use read deadlines.
		if f.cStdin, err = os.OpenFile(f.cfg.Stdin, os.O_RDONLY, 0); err != nil {
			t.Fatal(err)
		}
		if f.cStdout, err = os.OpenFile(f.cfg.Stdout, os.O_WRONLY, 0); err != nil {
			t.Fatal(err)
		}
		if f.cStderr, err = os.OpenFile(f.cfg.Stderr, os.O_WRONLY, 0); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			f.cStdin.Close()
			f.cStdout.Close()
			f.cStderr.Close()
		})
	}
	return f
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// done runs fn in a goroutine and fails the test unless it returns in time.
func done(t *testing.T, what string, fn func()) {
	t.Helper()
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		fn()
	}()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return", what)
	}
}

func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left, want <= %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond) // poll interval, not synchronisation
	}
}

func TestRoundTrip(t *testing.T) {
	base := runtime.NumGoroutine()
	f := newFixture(t, true)
	pr, pw := io.Pipe()
	var out, errOut testutil.Buffer
	c := New(f.cfg, f.stdin, f.stdout, f.stderr, Streams{Stdin: pr, Stdout: &out, Stderr: &errOut})
	if c.Config() != f.cfg {
		t.Fatalf("Config = %+v, want %+v", c.Config(), f.cfg)
	}

	// stdin: data and then EOF reach the container.
	go func() {
		pw.Write([]byte("input"))
		pw.Close()
	}()
	var got []byte
	done(t, "reading container stdin", func() { got, _ = io.ReadAll(f.cStdin) })
	if string(got) != "input" {
		t.Fatalf("container stdin = %q, want %q", got, "input")
	}
	done(t, "stdin copy", func() { <-c.stdinDone })

	// stdout/stderr: data arrives, and Wait returns once the writers close.
	f.cStdout.Write([]byte("out"))
	f.cStderr.Write([]byte("err"))
	f.cStdout.Close()
	f.cStderr.Close()
	done(t, "Wait", c.Wait)
	if out.String() != "out" || errOut.String() != "err" {
		t.Fatalf("stdout %q stderr %q", out.String(), errOut.String())
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	f.cStdin.Close()
	waitGoroutines(t, base)
}

// TestOutputAlwaysDrained writes more than a pipe holds (64 KiB) with consumers
// that do not keep the data; the container must never block.
func TestOutputAlwaysDrained(t *testing.T) {
	tests := []struct {
		name   string
		stdout io.Writer
	}{
		{"nil stream", nil},
		{"failing stream", failWriter{}},
		{"buffer", &testutil.Buffer{}},
	}
	payload := bytes.Repeat([]byte("0123456789abcdef"), 16<<10) // 256 KiB
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, true)
			c := New(f.cfg, nil, f.stdout, f.stderr, Streams{Stdout: tt.stdout})
			for _, w := range []*os.File{f.cStdout, f.cStderr} {
				done(t, "container write", func() {
					if _, err := w.Write(payload); err != nil {
						t.Error(err)
					}
				})
				w.Close()
			}
			done(t, "Wait", c.Wait)
			if b, ok := tt.stdout.(*testutil.Buffer); ok && b.String() != string(payload) {
				t.Fatalf("stdout got %d bytes, want %d", len(b.String()), len(payload))
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCancelKeepsStdinOpen(t *testing.T) {
	base := runtime.NumGoroutine()
	f := newFixture(t, true)
	pr, pw := io.Pipe()
	var out testutil.Buffer
	c := New(f.cfg, f.stdin, f.stdout, f.stderr, Streams{Stdin: pr, Stdout: &out})

	done(t, "first write", func() { pw.Write([]byte("a")) })
	buf := make([]byte, 8)
	n, err := f.cStdin.Read(buf)
	if err != nil || string(buf[:n]) != "a" {
		t.Fatalf("container stdin read %q, %v", buf[:n], err)
	}

	c.Cancel()
	c.Cancel()
	// The copy is blocked in pr.Read; this write unblocks it and is dropped.
	done(t, "write after cancel", func() { pw.Write([]byte("b")) })
	done(t, "stdin copy after cancel", func() { <-c.stdinDone })

	// The pipe is still open: no data, but no EOF either.
	f.cStdin.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := f.cStdin.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("container stdin after Cancel: %q, %v; want no data and no EOF", buf[:n], err)
	}

	// Output still flows after Cancel.
	f.cStdout.Write([]byte("still"))
	f.cStdout.Close()
	f.cStderr.Close()
	done(t, "Wait", c.Wait)
	if out.String() != "still" {
		t.Fatalf("stdout after Cancel = %q", out.String())
	}

	if err := c.CloseStdin(); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseStdin(); err != nil {
		t.Fatalf("second CloseStdin = %v", err)
	}
	f.cStdin.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := f.cStdin.Read(buf); err != io.EOF {
		t.Fatalf("container stdin after CloseStdin: %q, %v; want EOF", buf[:n], err)
	}
	c.Close()
	pw.Close()
	waitGoroutines(t, base)
}

func TestCloseStdinWhileFeeding(t *testing.T) {
	f := newFixture(t, true)
	pr, pw := io.Pipe()
	c := New(f.cfg, f.stdin, f.stdout, f.stderr, Streams{Stdin: pr})
	defer c.Close()
	if err := c.CloseStdin(); err != nil {
		t.Fatal(err)
	}
	var got []byte
	done(t, "container stdin EOF", func() { got, _ = io.ReadAll(f.cStdin) })
	if len(got) != 0 {
		t.Fatalf("container stdin got %q after CloseStdin", got)
	}
	// The stdin copy ends at its next read, whose data is dropped.
	done(t, "write after CloseStdin", func() { pw.Write([]byte("late")) })
	done(t, "stdin copy", func() { <-c.stdinDone })
}

// TestCloseEndsEverything closes an IO whose process never started: the shim
// never opened the FIFOs, so only Close can end the copies.
func TestCloseEndsEverything(t *testing.T) {
	tests := []struct {
		name       string
		stdinOwned bool // reader controlled by the test, closed after Close
	}{
		{"no stdin stream", false},
		{"stdin stream", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := runtime.NumGoroutine()
			f := newFixture(t, false)
			streams := Streams{Stdout: &testutil.Buffer{}}
			pr, pw := io.Pipe()
			if tt.stdinOwned {
				streams.Stdin = pr
			}
			c := New(f.cfg, f.stdin, f.stdout, f.stderr, streams)
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			done(t, "Wait after Close", c.Wait)
			// A stdin copy blocked in Read ends at the next read.
			pw.Close()
			done(t, "stdin copy", func() { <-c.stdinDone })
			waitGoroutines(t, base)
		})
	}
}

func TestNilPipes(t *testing.T) {
	base := runtime.NumGoroutine()
	cfg := cio.Config{Terminal: true}
	c := New(cfg, nil, nil, nil, Streams{Stdin: bytes.NewReader([]byte("x"))})
	done(t, "Wait", c.Wait)
	c.Cancel()
	if err := c.CloseStdin(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if c.Config() != cfg {
		t.Fatalf("Config = %+v", c.Config())
	}
	waitGoroutines(t, base)
}
