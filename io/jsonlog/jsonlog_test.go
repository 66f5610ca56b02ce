package jsonlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

// fakeClock hands out increasing times, one second apart.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func openTest(t *testing.T, opts Options) (*Writer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ctr-json.log")
	w, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	w.now = newFakeClock().Now
	t.Cleanup(func() { w.Close() })
	return w, path
}

func readAll(t *testing.T, path string, opts ReadOptions) []Entry {
	t.Helper()
	var got []Entry
	err := Read(context.Background(), path, opts, func(e Entry) error {
		got = append(got, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func logs(es []Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Stream + ":" + e.Log
	}
	return out
}

func TestStreamSplitting(t *testing.T) {
	long := strings.Repeat("x", MaxLineSize)
	tests := []struct {
		name   string
		writes []string
		close  bool
		want   []string
	}{
		{"one line", []string{"hello\n"}, false, []string{"hello\n"}},
		{"two lines one write", []string{"a\nb\n"}, false, []string{"a\n", "b\n"}},
		{"line across writes", []string{"he", "ll", "o\nwor", "ld\n"}, false, []string{"hello\n", "world\n"}},
		{"partial kept until close", []string{"a\npart"}, false, []string{"a\n"}},
		{"partial flushed on close", []string{"a\npart"}, true, []string{"a\n", "part"}},
		{"empty lines", []string{"\n\n"}, false, []string{"\n", "\n"}},
		{"empty write", []string{""}, true, nil},
		{"exactly max line", []string{long + "\n"}, false, []string{long + "\n"}},
		{"max line without newline waits", []string{long}, false, nil},
		{"over max without newline", []string{long, "yz"}, false, []string{long}},
		{"over max flushed", []string{long + "yz"}, true, []string{long, "yz"}},
		{"over max with newline", []string{long + "yz\n"}, false, []string{long, "yz\n"}},
		{"twice max in pieces", []string{long[:100], long[100:], long, "!\n"}, false, []string{long, long, "!\n"}},
		{"escapes", []string{"q\"b\\s\tt\x01\u2028é\xff<>&\r\n"}, false, []string{"q\"b\\s\tt\x01\u2028é\ufffd<>&\r\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, path := openTest(t, Options{})
			s := w.Stream("stdout")
			for _, in := range tt.writes {
				n, err := s.Write([]byte(in))
				if err != nil || n != len(in) {
					t.Fatalf("Write(%q) = %d, %v", in, n, err)
				}
			}
			if tt.close {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
			got := readAll(t, path, ReadOptions{Tail: TailAll})
			var gotLogs []string
			for _, e := range got {
				if e.Stream != "stdout" {
					t.Errorf("stream = %q", e.Stream)
				}
				gotLogs = append(gotLogs, e.Log)
			}
			if fmt.Sprint(gotLogs) != fmt.Sprint(tt.want) || len(gotLogs) != len(tt.want) {
				t.Fatalf("entries = %q, want %q", gotLogs, tt.want)
			}
		})
	}
}

func TestAppendEntryMatchesEncodingJSON(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	for _, s := range []string{"", "plain\n", `q"\`, "ctl\x00\x1f\x7f", "é中\U0001F600", "bad\xff\xfe", "\u2028\u2029", "<a&b>", "\b\f\x1b[0m\r\n"} {
		var b bytes.Buffer
		appendEntry(&b, []byte(s), encodeString("stderr"), ts)
		var got Entry
		if err := json.Unmarshal(b.Bytes(), &got); err != nil {
			t.Fatalf("%q: invalid JSON %s: %v", s, b.Bytes(), err)
		}
		want, _ := json.Marshal(Entry{Log: s, Stream: "stderr", Time: ts})
		var wantE Entry
		json.Unmarshal(want, &wantE)
		if !reflect.DeepEqual(got, wantE) {
			t.Errorf("%q: decoded %+v, want %+v", s, got, wantE)
		}
		if !bytes.HasSuffix(b.Bytes(), []byte("}\n")) || bytes.Count(b.Bytes(), []byte("\n")) != 1 {
			t.Errorf("%q: entry not one line: %q", s, b.Bytes())
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
		opts Options
		is   func(error) bool
	}{
		{"empty path", "", Options{}, errdefs.IsInvalidArgument},
		{"unclean path", dir + "/a/../x.log", Options{}, errdefs.IsInvalidArgument},
		{"negative size", dir + "/x.log", Options{MaxSize: -1}, errdefs.IsInvalidArgument},
		{"negative files", dir + "/x.log", Options{MaxFiles: -1}, errdefs.IsInvalidArgument},
		{"missing dir", dir + "/nodir/x.log", Options{}, errdefs.IsNotFound},
		{"directory", dir, Options{}, func(err error) bool { return err != nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := Open(tt.path, tt.opts)
			if !tt.is(err) {
				if w != nil {
					w.Close()
				}
				t.Fatalf("Open = %v: wrong error class", err)
			}
		})
	}
}

func TestFileModeAndAppend(t *testing.T) {
	w, path := openTest(t, Options{})
	fmt.Fprint(w.Stream("stdout"), "one\n")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, want 0600", fi.Mode().Perm())
	}
	w2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(w2.Stream("stderr"), "two\n")
	w2.Close()
	if got := logs(readAll(t, path, ReadOptions{Tail: TailAll})); fmt.Sprint(got) != "[stdout:one\n stderr:two\n]" {
		t.Fatalf("after reopen: %q", got)
	}
}

func TestClosed(t *testing.T) {
	w, _ := openTest(t, Options{})
	s := w.Stream("stdout")
	s.Write([]byte("partial"))
	ch := w.Notify()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	select {
	case <-ch:
	default:
		t.Fatal("Close did not wake Notify")
	}
	if _, err := s.Write([]byte("x\n")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close = %v, want ErrClosed", err)
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("flush after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Write([]byte("x\n")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write to closed stream = %v, want ErrClosed", err)
	}
	select {
	case <-w.Notify():
		t.Fatal("Notify after Close returned a closed channel")
	default:
	}
}

func TestNotify(t *testing.T) {
	w, _ := openTest(t, Options{MaxSize: 200, MaxFiles: 2})
	s := w.Stream("stdout")
	for i := range 5 {
		ch := w.Notify()
		select {
		case <-ch:
			t.Fatal("Notify channel closed before a write")
		default:
		}
		fmt.Fprintf(s, "line %d %s\n", i, strings.Repeat("p", 50))
		select {
		case <-ch:
		default:
			t.Fatalf("write %d did not close the Notify channel", i)
		}
	}
}

func seqLines(t *testing.T, es []Entry) []int {
	t.Helper()
	var out []int
	for _, e := range es {
		f := strings.Fields(e.Log)
		n, err := strconv.Atoi(f[0])
		if err != nil {
			t.Fatalf("unexpected entry %q", e.Log)
		}
		out = append(out, n)
	}
	return out
}

func checkSeq(t *testing.T, got []int, first, last int) {
	t.Helper()
	if len(got) != last-first+1 {
		t.Fatalf("got %d entries %v..., want %d..%d", len(got), got[:min(len(got), 5)], first, last)
	}
	for i, n := range got {
		if n != first+i {
			t.Fatalf("entry %d = %d, want %d", i, n, first+i)
		}
	}
}

func TestRotation(t *testing.T) {
	tests := []struct {
		name     string
		maxFiles int
	}{{"one file", 1}, {"two files", 2}, {"three files", 3}, {"five files", 5}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const maxSize = 1000
			w, path := openTest(t, Options{MaxSize: maxSize, MaxFiles: tt.maxFiles})
			s := w.Stream("stdout")
			const n = 500
			for i := range n {
				if _, err := fmt.Fprintf(s, "%d %s\n", i, strings.Repeat("z", i%20)); err != nil {
					t.Fatal(err)
				}
			}
			for i := 1; i < tt.maxFiles; i++ {
				fi, err := os.Stat(rotatedName(path, i))
				if err != nil {
					t.Fatalf("rotated file %d: %v", i, err)
				}
				if fi.Size() > maxSize || fi.Mode().Perm() != 0o600 {
					t.Fatalf("rotated file %d: size %d mode %v", i, fi.Size(), fi.Mode())
				}
			}
			if _, err := os.Stat(rotatedName(path, tt.maxFiles)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("file .%d kept beyond MaxFiles: %v", tt.maxFiles, err)
			}
			for i := 1; i < tt.maxFiles; i++ {
				// A rotated file was full: the next entry (< 120 bytes) did not fit.
				if fi, _ := os.Stat(rotatedName(path, i)); fi.Size() < maxSize-120 {
					t.Fatalf("rotated file %d has only %d bytes", i, fi.Size())
				}
			}
			got := seqLines(t, readAll(t, path, ReadOptions{Tail: TailAll}))
			if len(got) < 5*tt.maxFiles {
				t.Fatalf("only %d entries kept", len(got))
			}
			checkSeq(t, got, n-len(got), n-1)
		})
	}
}

// TestReadTailSince reads a log spread over three files.
func TestReadTailSince(t *testing.T) {
	w, path := openTest(t, Options{MaxSize: 500, MaxFiles: 10})
	clock := newFakeClock()
	var times []time.Time
	w.now = func() time.Time {
		t := clock.Now()
		times = append(times, t)
		return t
	}
	const n = 30
	out, errs := w.Stream("stdout"), w.Stream("stderr")
	for i := range n {
		s := out
		if i%3 == 0 {
			s = errs
		}
		fmt.Fprintf(s, "%d\n", i)
	}
	if _, err := os.Stat(rotatedName(path, 2)); err != nil {
		t.Fatalf("test wants at least three files: %v", err)
	}
	tests := []struct {
		name        string
		tail        int
		since       time.Time
		first, last int // expected sequence; first > last for none
	}{
		{"all", TailAll, time.Time{}, 0, n - 1},
		{"all negative", -7, time.Time{}, 0, n - 1},
		{"none", 0, time.Time{}, 1, 0},
		{"last one", 1, time.Time{}, n - 1, n - 1},
		{"last five", 5, time.Time{}, n - 5, n - 1},
		{"across files", 25, time.Time{}, n - 25, n - 1},
		{"more than stored", 1000, time.Time{}, 0, n - 1},
		{"since", TailAll, times[20], 20, n - 1},
		{"since future", TailAll, times[n-1].Add(time.Hour), 1, 0},
		{"since and tail", 3, times[20], n - 3, n - 1},
		{"since limits tail", 20, times[25], 25, n - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readAll(t, path, ReadOptions{Tail: tt.tail, Since: tt.since})
			checkSeq(t, seqLines(t, got), tt.first, tt.last)
			for _, e := range got {
				i, _ := strconv.Atoi(strings.TrimSpace(e.Log))
				want := "stdout"
				if i%3 == 0 {
					want = "stderr"
				}
				if e.Stream != want || !e.Time.Equal(times[i]) {
					t.Fatalf("entry %d = %+v, want stream %s time %v", i, e, want, times[i])
				}
			}
		})
	}
}

func TestReadCorruptLines(t *testing.T) {
	w, path := openTest(t, Options{})
	s := w.Stream("stdout")
	fmt.Fprint(s, "0\n")
	// Corrupt content between valid entries, as a crash or disk error might leave.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("not json\n{\"log\":\"trunc\n\n{}garbage\n")
	f.Close()
	fmt.Fprint(s, "1\n")
	for _, tail := range []int{TailAll, 2} {
		checkSeq(t, seqLines(t, readAll(t, path, ReadOptions{Tail: tail})), 0, 1)
	}
	// A crashed rotated file may end without a newline.
	if err := os.WriteFile(rotatedName(path, 1), []byte("{\"log\":\"x\\n\",\"stream\":\"stdout\",\"time\":\"2020-01-01T00:00:00Z\"}\n{\"log\":"), 0o600); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, path, ReadOptions{Tail: TailAll})
	if len(got) != 3 || got[0].Log != "x\n" {
		t.Fatalf("got %q", logs(got))
	}
}

func TestReadErrors(t *testing.T) {
	dir := t.TempDir()
	if err := Read(context.Background(), filepath.Join(dir, "missing.log"), ReadOptions{Tail: TailAll}, func(Entry) error { return nil }); !errdefs.IsNotFound(err) {
		t.Fatalf("missing log: %v, want not found", err)
	}
	if err := Read(context.Background(), filepath.Join(dir, "nodir", "x.log"), ReadOptions{}, func(Entry) error { return nil }); !errdefs.IsNotFound(err) {
		t.Fatalf("missing dir: %v, want not found", err)
	}
	if err := Read(context.Background(), "", ReadOptions{}, func(Entry) error { return nil }); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("empty path: %v, want invalid argument", err)
	}

	w, path := openTest(t, Options{})
	fmt.Fprint(w.Stream("stdout"), "0\n1\n2\n")
	stop := errors.New("stop")
	for _, opts := range []ReadOptions{{Tail: TailAll}, {Tail: 2}, {Tail: TailAll, Follow: true}} {
		calls := 0
		err := Read(context.Background(), path, opts, func(Entry) error {
			calls++
			return stop
		})
		if !errors.Is(err, stop) || calls != 1 {
			t.Fatalf("%+v: Read = %v after %d calls, want fn's error after 1", opts, err, calls)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Read(ctx, path, ReadOptions{Tail: TailAll}, func(Entry) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled Read = %v", err)
	}
	if err := Read(ctx, path, ReadOptions{Tail: TailAll, Follow: true}, func(Entry) error { return nil }); err != nil {
		t.Fatalf("canceled follow = %v, want nil", err)
	}
}

// follow runs a following Read and returns its entries channel and result.
func follow(t *testing.T, ctx context.Context, path string, opts ReadOptions) (chan Entry, <-chan error) {
	t.Helper()
	entries := make(chan Entry, 4096)
	res := make(chan error, 1)
	opts.Follow = true
	go func() {
		res <- Read(ctx, path, opts, func(e Entry) error {
			entries <- e
			return nil
		})
	}()
	return entries, res
}

func receive(t *testing.T, entries <-chan Entry, n int) []Entry {
	t.Helper()
	var got []Entry
	timeout := time.After(10 * time.Second)
	for len(got) < n {
		select {
		case e := <-entries:
			got = append(got, e)
		case <-timeout:
			t.Fatalf("received %d of %d entries", len(got), n)
		}
	}
	return got
}

func TestFollow(t *testing.T) {
	tests := []struct {
		name     string
		notify   bool
		maxFiles int
		tail     int
		every    int // writes between waits for the follower
	}{
		// Three ~85 byte entries fit in a 300 byte file. A follower may
		// lag by several rotations as long as the files are still kept.
		{"notify", true, 5, TailAll, 7},
		{"poll", false, 5, TailAll, 7},
		{"notify single file", true, 1, 2, 2},
		{"notify no replay", true, 2, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, path := openTest(t, Options{MaxSize: 300, MaxFiles: tt.maxFiles})
			s := w.Stream("stdout")
			for i := range 3 {
				fmt.Fprintf(s, "%d\n", i)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			opts := ReadOptions{Tail: tt.tail}
			if tt.notify {
				opts.Notify = w.Notify
			}
			entries, res := follow(t, ctx, path, opts)
			if tt.tail == 0 {
				// Nothing is replayed, so we cannot see when the follower
				// is ready: write sync entries until one arrives.
				syncFollower(t, s, entries)
			} else {
				first := 0
				if tt.tail > 0 {
					first = 3 - tt.tail
				}
				checkSeq(t, seqLines(t, receive(t, entries, 3-first)), first, 2)
			}
			const n = 60
			checked := 2
			for i := 3; i < n; i++ {
				fmt.Fprintf(s, "%d %s\n", i, strings.Repeat("r", 20))
				if (i-checked) == tt.every || i == n-1 {
					checkSeq(t, seqLines(t, receive(t, entries, i-checked)), checked+1, i)
					checked = i
				}
			}
			// A partial line is held back until its newline arrives.
			fmt.Fprint(s, "60 part")
			select {
			case e := <-entries:
				t.Fatalf("partial line delivered early: %+v", e)
			default:
			}
			fmt.Fprint(s, "ial\n")
			if got := receive(t, entries, 1); got[0].Log != "60 partial\n" {
				t.Fatalf("got %q", got[0].Log)
			}
			cancel()
			select {
			case err := <-res:
				if err != nil {
					t.Fatalf("Read after cancel = %v, want nil", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("follow did not stop after cancel")
			}
		})
	}
}

// syncFollower writes "-1" entries until the follower delivers one, then
// drops the rest of them.
func syncFollower(t *testing.T, s io.Writer, entries chan Entry) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	fmt.Fprint(s, "-1\n")
	for {
		select {
		case e := <-entries:
			if e.Log != "-1\n" {
				t.Fatalf("unexpected entry %q", e.Log)
			}
			// Later entries are marked; drop sync entries still in flight.
			fmt.Fprint(s, "-2\n")
			for e := range entries {
				if e.Log == "-2\n" {
					return
				}
			}
		case <-tick.C:
			fmt.Fprint(s, "-1\n")
		case <-deadline:
			t.Fatal("follower never started")
		}
	}
}

// TestFollowRawAppend completes a half-written line behind the Writer's back,
// as another process appending the file would.
func TestFollowRawAppend(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.log")
	line := `{"log":"hi\n","stream":"stdout","time":"2026-01-01T00:00:00Z"}` + "\n"
	if err := os.WriteFile(path, []byte(line+line[:10]), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, path, ReadOptions{Tail: TailAll}); len(got) != 1 {
		t.Fatalf("half-written line replayed: %q", logs(got))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	entries, res := follow(t, ctx, path, ReadOptions{Tail: TailAll})
	receive(t, entries, 1)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(line[10:])
	f.Close()
	if got := receive(t, entries, 1); got[0].Log != "hi\n" {
		t.Fatalf("got %+v", got[0])
	}
	cancel()
	if err := <-res; err != nil {
		t.Fatal(err)
	}
}

// TestManyWritesNeverBlock pushes far more than a pipe buffer (64 KiB)
// through concurrent streams with rotation, under a deadline.
func TestManyWritesNeverBlock(t *testing.T) {
	// 30 files of 64 KiB keep all ~1.2 MB, so every entry can be checked.
	w, path := openTest(t, Options{MaxSize: 64 << 10, MaxFiles: 30})
	const perStream = 4000
	var wg sync.WaitGroup
	finished := make(chan struct{})
	var total atomic.Int64
	for _, name := range []string{"stdout", "stderr"} {
		wg.Go(func() {
			s := w.Stream(name)
			defer s.Close()
			for i := range perStream {
				n, err := fmt.Fprintf(s, "%d %s %s\n", i, name, strings.Repeat("m", 100))
				if err != nil {
					t.Error(err)
					return
				}
				total.Add(int64(n))
			}
		})
	}
	go func() {
		wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-time.After(30 * time.Second):
		t.Fatal("writes blocked")
	}
	if total.Load() < 512<<10 {
		t.Fatalf("only %d bytes written", total.Load())
	}
	got := readAll(t, path, ReadOptions{Tail: TailAll})
	last := map[string]int{}
	for _, e := range got {
		f := strings.Fields(e.Log)
		if f[1] != e.Stream {
			t.Fatalf("entry %q on stream %s: streams mixed", e.Log, e.Stream)
		}
		n, _ := strconv.Atoi(f[0])
		if prev, ok := last[e.Stream]; ok && n != prev+1 {
			t.Fatalf("%s: %d after %d", e.Stream, n, prev)
		}
		last[e.Stream] = n
	}
	if last["stdout"] != perStream-1 || last["stderr"] != perStream-1 {
		t.Fatalf("last entries %v", last)
	}
	if len(got) != 2*perStream {
		t.Fatalf("read %d entries, want %d", len(got), 2*perStream)
	}
	if _, err := os.Stat(rotatedName(path, 10)); err != nil {
		t.Fatalf("want many rotations: %v", err)
	}
	if _, err := os.Stat(rotatedName(path, 30)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("too many files kept: %v", err)
	}
}

// countingReaderAt counts bytes read, to show Tail reads only the end.
type countingReaderAt struct {
	r *bytes.Reader
	n int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n += int64(n)
	return n, err
}

func TestReadBackward(t *testing.T) {
	var b bytes.Buffer
	for i := range 100000 {
		fmt.Fprintf(&b, "%d\n", i)
	}
	b.WriteString("tail-without-newline")
	data := b.Bytes()
	tests := []struct {
		name    string
		want    int
		first   string
		maxRead int64
	}{
		{"one", 1, "tail-without-newline", chunkSize},
		{"ten", 10, "99991", chunkSize},
		{"across chunks", 30000, "70001", int64(len(data))},
		{"all", 100001, "0", int64(len(data))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &countingReaderAt{r: bytes.NewReader(data)}
			var lines []string
			err := readBackward(r, int64(len(data)), func(line []byte) bool {
				lines = append(lines, string(line))
				return len(lines) == tt.want
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(lines) != tt.want || lines[len(lines)-1] != tt.first {
				t.Fatalf("got %d lines ending %q, want %d ending %q", len(lines), lines[len(lines)-1], tt.want, tt.first)
			}
			for i := 1; i < len(lines)-1; i++ {
				a, _ := strconv.Atoi(lines[i])
				b, _ := strconv.Atoi(lines[i+1])
				if b != a-1 {
					t.Fatalf("line %d %q then %q", i, lines[i], lines[i+1])
				}
			}
			if r.n > tt.maxRead {
				t.Fatalf("read %d bytes, want <= %d", r.n, tt.maxRead)
			}
		})
	}
}

func TestScanLinesLong(t *testing.T) {
	long := strings.Repeat("L", 3*chunkSize)
	in := "a\n" + long + "\nb"
	var got []string
	if err := scanLines(strings.NewReader(in), func(l []byte) error {
		got = append(got, string(l))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != "a" || got[1] != long || got[2] != "b" {
		t.Fatalf("got %d lines", len(got))
	}
}

func BenchmarkWriteLine(b *testing.B) {
	w, err := Open(filepath.Join(b.TempDir(), "bench.log"), Options{MaxSize: 8 << 20, MaxFiles: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	s := w.Stream("stdout")
	line := []byte(strings.Repeat("benchmark log line ", 5) + "\n")
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Write(line); err != nil {
			b.Fatal(err)
		}
	}
}

var _ io.WriteCloser = (*stream)(nil)

// rotationFixture builds log files by hand so a test can stop a rotation
// half-way, where a Writer would do it all under its lock.
type rotationFixture struct {
	t    *testing.T
	path string
}

func newRotationFixture(t *testing.T) *rotationFixture {
	return &rotationFixture{t: t, path: filepath.Join(t.TempDir(), "ctr-json.log")}
}

// name is path for 0 and path.i otherwise.
func (fx *rotationFixture) name(i int) string {
	if i == 0 {
		return fx.path
	}
	return rotatedName(fx.path, i)
}

// create writes a new file at path holding one entry with text log.
func (fx *rotationFixture) create(log string) {
	fx.t.Helper()
	var b bytes.Buffer
	appendEntry(&b, []byte(log+"\n"), encodeString("stdout"), time.Unix(0, 0).UTC())
	if err := os.WriteFile(fx.path, b.Bytes(), 0o600); err != nil {
		fx.t.Fatal(err)
	}
}

// shift renames file i to i+1, one step of a rotation.
func (fx *rotationFixture) shift(i int) {
	fx.t.Helper()
	if err := os.Rename(fx.name(i), fx.name(i+1)); err != nil {
		fx.t.Fatal(err)
	}
}

// follower returns a reader that has read the whole file now at name(i)
// as its cur, and the list its entries go to.
func (fx *rotationFixture) follower(i int) (*reader, *[]string) {
	fx.t.Helper()
	got := new([]string)
	r := &reader{ctx: context.Background(), path: fx.path, fn: func(e Entry) error {
		*got = append(*got, strings.TrimSuffix(e.Log, "\n"))
		return nil
	}}
	f, err := os.Open(fx.name(i))
	if err != nil {
		fx.t.Fatal(err)
	}
	fx.t.Cleanup(func() { r.cur.Close() })
	r.cur = f
	if _, err := r.readNew(); err != nil {
		fx.t.Fatal(err)
	}
	*got = nil
	return r, got
}

// catchUp runs the follower's read and rotation steps until neither finds
// anything, as follow does between wake-ups.
func catchUp(t *testing.T, r *reader) {
	t.Helper()
	for range 100 {
		progressed, err := r.readNew()
		if err != nil {
			t.Fatal(err)
		}
		switched, err := r.checkRotation()
		if err != nil {
			t.Fatal(err)
		}
		if !progressed && !switched {
			return
		}
	}
	t.Fatal("follower did not settle")
}

// A follower that looks for its rotated file while a rotation is renaming
// the files must not take the gap left by a rename for the end of the
// rotated files and jump to the current file, skipping the ones between.
func TestFollowRotationGap(t *testing.T) {
	fx := newRotationFixture(t)
	fx.create("x")
	fx.shift(0)
	fx.create("y")
	fx.shift(1)
	fx.shift(0)
	fx.create("z")
	// x at path.2, y at path.1, z at path.
	r, got := fx.follower(2)

	fx.shift(2) // a rotation has begun: x at path.3, nothing at path.2
	catchUp(t, r)
	fx.shift(1)
	fx.shift(0)
	fx.create("w")
	catchUp(t, r)
	if want := []string{"y", "z", "w"}; !slices.Equal(*got, want) {
		t.Fatalf("followed %q, want %q", *got, want)
	}
}

// A rotation between finding where the follower's file went and opening
// the file after it must not make the follower open the newer file that
// now has that name.
func TestFollowRotationBeforeOpen(t *testing.T) {
	fx := newRotationFixture(t)
	fx.create("x")
	fx.shift(0)
	fx.create("y")
	// x at path.1, y at path.
	r, got := fx.follower(1)

	r.beforeOpenSuccessor = func() {
		r.beforeOpenSuccessor = nil
		fx.shift(1)
		fx.shift(0)
		fx.create("z")
	}
	catchUp(t, r)
	catchUp(t, r) // woken by the rotation
	if want := []string{"y", "z"}; !slices.Equal(*got, want) {
		t.Fatalf("followed %q, want %q", *got, want)
	}
}
