package fifoset

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	"github.com/containerd/fifo"
)

func TestValidateID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"", false},
		{"../x", false},
		{"a/b", false},
		{".x", false},
		{"-x", false},
		{"_x", false},
		{"x y", false},
		{"x\n", false},
		{strings.Repeat("a", 77), false},
		{strings.Repeat("a", 76), true},
		{"ok-1.2_3", true},
		{"a", true},
		{"0", true},
		{"a..b", false},
		{"a-", false},
	}
	for _, tt := range tests {
		err := ValidateID(tt.id)
		if tt.ok && err != nil {
			t.Errorf("ValidateID(%q) = %v, want nil", tt.id, err)
		}
		if !tt.ok && !errdefs.IsInvalidArgument(err) {
			t.Errorf("ValidateID(%q) = %v, want invalid argument", tt.id, err)
		}
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name            string
		stdin, terminal bool
		want            func(dir string) Set
	}{
		{"stdin", true, false, func(d string) Set {
			return Set{Dir: d, Stdin: d + "/stdin", Stdout: d + "/stdout", Stderr: d + "/stderr"}
		}},
		{"no-stdin", false, false, func(d string) Set {
			return Set{Dir: d, Stdout: d + "/stdout", Stderr: d + "/stderr"}
		}},
		{"terminal", true, true, func(d string) Set {
			return Set{Dir: d, Stdin: d + "/stdin", Stdout: d + "/stdout", Terminal: true}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "a", "fifo")
			s, err := New(root, "c1", "p-"+tt.name, tt.stdin, tt.terminal)
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(root, "c1", "p-"+tt.name)
			if want := tt.want(dir); *s != want {
				t.Fatalf("New = %+v, want %+v", *s, want)
			}
			for _, d := range []string{root, filepath.Join(root, "c1"), dir} {
				fi, err := os.Stat(d)
				if err != nil {
					t.Fatal(err)
				}
				if perm := fi.Mode().Perm(); perm != 0o700 {
					t.Errorf("%s mode = %v, want 0700", d, perm)
				}
			}
			if got := s.Config(); got != (cio.Config{Stdin: s.Stdin, Stdout: s.Stdout, Stderr: s.Stderr, Terminal: tt.terminal}) {
				t.Errorf("Config = %+v", got)
			}
			if err := s.Remove(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("after Remove stat %s = %v, want not exist", dir, err)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	base := t.TempDir()
	if _, err := New(base, "c", "p", false, false); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(t.TempDir(), filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, root, cid, pid string
		is                   func(error) bool
	}{
		{"relative root", "rel/dir", "c", "p", errdefs.IsInvalidArgument},
		{"empty root", "", "c", "p", errdefs.IsInvalidArgument},
		{"bad container", base, "../c", "p", errdefs.IsInvalidArgument},
		{"bad process", base, "c", "a/b", errdefs.IsInvalidArgument},
		{"exists", base, "c", "p", errdefs.IsAlreadyExists},
		{"container is file", base, "file", "p", errdefs.IsFailedPrecondition},
		{"container is symlink", base, "link", "p", errdefs.IsFailedPrecondition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.root, tt.cid, tt.pid, false, false)
			if !tt.is(err) {
				t.Fatalf("New = %+v, %v: wrong error class", s, err)
			}
		})
	}
}

func TestRemoveContainer(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{"init", "exec1"} {
		if _, err := New(root, "c", p, true, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemoveContainer(root, "../c"); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("RemoveContainer(../c) = %v, want invalid argument", err)
	}
	if err := RemoveContainer(root, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "c")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("container dir still there: %v", err)
	}
}

func TestFromPaths(t *testing.T) {
	tests := []struct {
		name                  string
		stdin, stdout, stderr string
		terminal              bool
		want                  Set
	}{
		{"all", "/r/c/p/stdin", "/r/c/p/stdout", "/r/c/p/stderr", false,
			Set{Dir: "/r/c/p", Stdin: "/r/c/p/stdin", Stdout: "/r/c/p/stdout", Stderr: "/r/c/p/stderr"}},
		{"no stdin", "", "/r/c/p/stdout", "/r/c/p/stderr", false,
			Set{Dir: "/r/c/p", Stdout: "/r/c/p/stdout", Stderr: "/r/c/p/stderr"}},
		{"terminal drops stderr", "", "/r/c/p/stdout", "/r/c/p/stderr", true,
			Set{Dir: "/r/c/p", Stdout: "/r/c/p/stdout", Terminal: true}},
		{"none", "", "", "", false, Set{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FromPaths(tt.stdin, tt.stdout, tt.stderr, tt.terminal); *got != tt.want {
				t.Fatalf("FromPaths = %+v, want %+v", *got, tt.want)
			}
		})
	}
}

// waitGoroutines polls until the goroutine count is back to at most n.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left, want <= %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond) // poll interval, not synchronisation
	}
}

// TestOpenRoundTrip opens the container ends as the shim would and moves data
// through every FIFO.
func TestOpenRoundTrip(t *testing.T) {
	base := runtime.NumGoroutine()
	ctx := context.Background()
	s, err := New(t.TempDir(), "c", "init", true, false)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{s.Stdin, s.Stdout, s.Stderr} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&os.ModeNamedPipe == 0 || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v, want named pipe 0600", f, fi.Mode())
		}
	}
	// The shim side: blocking opens that pair with our non-blocking ones.
	cin, err := fifo.OpenFifo(ctx, s.Stdin, syscall.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	cout, err := fifo.OpenFifo(ctx, s.Stdout, syscall.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	cerr, err := fifo.OpenFifo(ctx, s.Stderr, syscall.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		w    io.WriteCloser
		r    io.ReadCloser
	}{
		{"stdin", p.Stdin, cin},
		{"stdout", cout, p.Stdout},
		{"stderr", cerr, p.Stderr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := []byte("hello " + tt.name)
			if _, err := tt.w.Write(msg); err != nil {
				t.Fatal(err)
			}
			// Closing the only writer must give the reader EOF after the data.
			if err := tt.w.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(tt.r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, msg) {
				t.Fatalf("read %q, want %q", got, msg)
			}
		})
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	for _, c := range []io.Closer{cin, cout, cerr} {
		c.Close()
	}
	if err := s.Remove(); err != nil {
		t.Fatal(err)
	}
	waitGoroutines(t, base)
}

func TestOpenTerminalAndNoStdin(t *testing.T) {
	s, err := New(t.TempDir(), "c", "init", false, true)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Stdin != nil || p.Stderr != nil || p.Stdout == nil {
		t.Fatalf("pipes = %+v, want only stdout", p)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "stderr")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stderr fifo created for a terminal: %v", err)
	}
}

// TestOpenPartialFailure makes stderr fail after stdin and stdout opened and
// checks that nothing is left running.
func TestOpenPartialFailure(t *testing.T) {
	base := runtime.NumGoroutine()
	s, err := New(t.TempDir(), "c", "init", true, false)
	if err != nil {
		t.Fatal(err)
	}
	s.Stderr = filepath.Join(s.Dir, "missing-dir", "stderr")
	p, err := s.Open(context.Background())
	if err == nil {
		p.Close()
		t.Fatal("Open succeeded with an unusable stderr path")
	}
	// The pending background opens of stdin and stdout end only if the
	// pipes were closed.
	waitGoroutines(t, base)
}

func TestOpenContext(t *testing.T) {
	base := runtime.NumGoroutine()
	s, err := New(t.TempDir(), "c", "init", true, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Open(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Open(canceled) = %v, want context.Canceled", err)
	}

	// Canceling after Open but before the shim connects closes the pipes.
	ctx, cancel = context.WithCancel(context.Background())
	p, err := s.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := p.Stdout.Read(make([]byte, 1)); err == nil {
		t.Fatal("read from a pipe abandoned by ctx succeeded")
	}
	if _, err := p.Stdin.Write([]byte("x")); err == nil {
		t.Fatal("write to a pipe abandoned by ctx succeeded")
	}
	p.Close()
	waitGoroutines(t, base)
}

func TestZeroSet(t *testing.T) {
	var s Set
	p, err := s.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if p.Stdin != nil || p.Stdout != nil || p.Stderr != nil {
		t.Fatalf("zero Set opened %+v", p)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(); err != nil {
		t.Fatal(err)
	}
}
