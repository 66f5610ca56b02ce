// Package jsonlog owns container log files in docker's json-file format: one
// JSON object per line ({"log":"...","stream":"stdout","time":"..."}), with
// size-based rotation to path.1, path.2, ... (path.1 is the newest rotated
// file).
//
// Writer appends entries; Read replays them (oldest first) and can follow new
// ones across rotations.
//
// Concurrency: a Writer and the stream writers it returns are safe for
// concurrent use; one mutex serialises file writes and rotation, so entries
// of different streams never interleave within a line. Read may run in any
// number of goroutines, in this or another process, while a Writer appends.
// Only one Writer may write a given path at a time.
//
// Zero value: a zero Writer is not usable; use Open. A zero Options takes the
// defaults. A zero ReadOptions replays no stored entries (Tail 0); set Tail
// to TailAll to replay them all.
package jsonlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/containerd/errdefs"
)

// Defaults for zero Options fields.
const (
	DefaultMaxSize  int64 = 10 << 20
	DefaultMaxFiles       = 3
)

// MaxLineSize is the longest log content of one Entry. A longer line is split
// into partial entries without a trailing "\n", as docker does.
const MaxLineSize = 16 << 10

// ErrClosed is returned for writes to a closed Writer or stream writer.
var ErrClosed = errors.New("jsonlog: writer closed")

// Entry is one line of a log file.
type Entry struct {
	// Log is the logged text, with its trailing "\n" unless it is a
	// partial line.
	Log string `json:"log"`
	// Stream names the source stream, "stdout" or "stderr".
	Stream string `json:"stream"`
	// Time is when the engine wrote the entry, in UTC.
	Time time.Time `json:"time"`
	// Attrs are the line's extra attributes, as docker json-file's
	// "attrs". The writer stores none; a reader may fill them in.
	Attrs map[string]string `json:"attrs,omitempty"`
}

// Options configure a Writer. Zero fields take the defaults.
type Options struct {
	// MaxSize is the largest size of one file in bytes before it is
	// rotated; 0 means DefaultMaxSize. A single entry larger than MaxSize
	// is still written whole.
	MaxSize int64
	// MaxFiles is how many files are kept, the current one included; 0
	// means DefaultMaxFiles. With 1 the file is replaced on rotation.
	MaxFiles int
}

// Writer appends entries to a log file and rotates it.
type Writer struct {
	path string
	opts Options
	now  func() time.Time // injected by tests

	mu     sync.Mutex
	f      *os.File
	size   int64
	closed bool
	notify chan struct{} // nil until Notify is called; closed on write
	enc    bytes.Buffer
}

// Open opens (creating it 0600 if needed, appending otherwise) the log file at
// path. Its directory must exist.
func Open(path string, opts Options) (*Writer, error) {
	if err := validatePath(path); err != nil {
		return nil, err
	}
	if opts.MaxSize < 0 || opts.MaxFiles < 0 {
		return nil, fmt.Errorf("invalid log options max-size %d, max-file %d: want values >= 0 (0 for the default): %w",
			opts.MaxSize, opts.MaxFiles, errdefs.ErrInvalidArgument)
	}
	if opts.MaxSize == 0 {
		opts.MaxSize = DefaultMaxSize
	}
	if opts.MaxFiles == 0 {
		opts.MaxFiles = DefaultMaxFiles
	}
	w := &Writer{path: path, opts: opts, now: time.Now}
	if err := w.openFile(); err != nil {
		return nil, err
	}
	return w, nil
}

func validatePath(path string) error {
	if path == "" || filepath.Clean(path) != path || path == "/" || path == "." {
		return fmt.Errorf("invalid log path %q: want a clean path to a file: %w", path, errdefs.ErrInvalidArgument)
	}
	return nil
}

func (w *Writer) openFile() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("open log %s: its directory does not exist, create it first: %w", w.path, errdefs.ErrNotFound)
		}
		return fmt.Errorf("open log %s: %w", w.path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat log %s: %w", w.path, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return fmt.Errorf("log %s is not a regular file: %w", w.path, errdefs.ErrInvalidArgument)
	}
	w.f, w.size = f, fi.Size()
	return nil
}

// Stream returns a writer for one stream name ("stdout" or "stderr"). It
// splits its input into lines: each complete line becomes one Entry whose Log
// keeps the trailing "\n"; a partial line is buffered until its newline
// arrives, until it exceeds MaxLineSize (then MaxLineSize bytes are written
// as a partial entry without "\n"), or until the stream writer is closed.
// Closing the stream writer does not close w.
func (w *Writer) Stream(name string) io.WriteCloser {
	return &stream{w: w, nameJSON: encodeString(name)}
}

// Notify returns a channel that is closed on the next write or rotation, for
// followers in the same process. After receiving from it, call Notify again.
// The channel is also closed by Close; after Close, Notify returns a channel
// that is never closed.
func (w *Writer) Notify() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.notify == nil {
		w.notify = make(chan struct{})
	}
	return w.notify
}

// wake closes the notify channel; w.mu must be held.
func (w *Writer) wake() {
	if w.notify != nil {
		close(w.notify)
		w.notify = nil
	}
}

// Close closes the log file. Stream writers fail with ErrClosed afterwards.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	w.wake()
	w.notify = make(chan struct{}) // never closed: nothing more will happen
	if w.f == nil {
		return nil
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("close log %s: %w", w.path, err)
	}
	return nil
}

// writeEntry encodes and appends one entry, rotating first when the file
// would grow past MaxSize.
func (w *Writer) writeEntry(streamJSON, line []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if w.f == nil {
		// A failed rotation could not reopen the file; try again.
		if err := w.openFile(); err != nil {
			return err
		}
	}
	w.enc.Reset()
	appendEntry(&w.enc, line, streamJSON, w.now().UTC())
	n := int64(w.enc.Len())
	if w.size > 0 && w.size+n > w.opts.MaxSize {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	written, err := w.f.Write(w.enc.Bytes())
	w.size += int64(written)
	w.wake()
	if err != nil {
		return fmt.Errorf("write log %s: %w", w.path, err)
	}
	return nil
}

// rotate shifts path.(n-1) to path.n, ..., path to path.1 and opens a new
// file at path. With MaxFiles 1 the old file is just removed. Followers
// detect the new file by its identity. w.mu must be held.
func (w *Writer) rotate() error {
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("close log %s for rotation: %w", w.path, err)
	}
	w.f = nil
	if w.opts.MaxFiles == 1 {
		if err := os.Remove(w.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return w.reopenAfter(fmt.Errorf("rotate log %s: %w", w.path, err))
		}
	} else {
		for i := w.opts.MaxFiles - 1; i > 1; i-- {
			err := os.Rename(rotatedName(w.path, i-1), rotatedName(w.path, i))
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return w.reopenAfter(fmt.Errorf("rotate log %s: %w", w.path, err))
			}
		}
		if err := os.Rename(w.path, rotatedName(w.path, 1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return w.reopenAfter(fmt.Errorf("rotate log %s: %w", w.path, err))
		}
	}
	w.wake()
	return w.openFile()
}

// reopenAfter reopens the current file after a failed rotation so later
// writes can still succeed, and returns err.
func (w *Writer) reopenAfter(err error) error {
	if oerr := w.openFile(); oerr != nil {
		return errors.Join(err, oerr)
	}
	return err
}

func rotatedName(path string, i int) string {
	return path + "." + strconv.Itoa(i)
}

// appendEntry writes the JSON form of an Entry plus "\n" to b, decoding like
// json.Marshal's output would, without reflection. streamJSON is the stream
// name already encoded as a JSON string.
func appendEntry(b *bytes.Buffer, line, streamJSON []byte, t time.Time) {
	b.WriteString(`{"log":`)
	appendString(b, line)
	b.WriteString(`,"stream":`)
	b.Write(streamJSON)
	b.WriteString(`,"time":"`)
	var tb [64]byte
	b.Write(t.AppendFormat(tb[:0], time.RFC3339Nano))
	b.WriteString("\"}\n")
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string. Valid UTF-8 is kept as is, with
// quotes, backslashes and control characters escaped; invalid UTF-8 goes
// through encoding/json, which replaces bad bytes with U+FFFD.
func appendString(b *bytes.Buffer, s []byte) {
	if !utf8.Valid(s) {
		enc := json.NewEncoder(b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(string(s)) // a string always encodes
		b.Truncate(b.Len() - 1)   // Encode appends "\n"
		return
	}
	b.WriteByte('"')
	start := 0
	for i, c := range s {
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b.Write(s[start:i])
		switch c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteString(`\u00`)
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		}
		start = i + 1
	}
	b.Write(s[start:])
	b.WriteByte('"')
}

func encodeString(s string) []byte {
	var b bytes.Buffer
	appendString(&b, []byte(s))
	return b.Bytes()
}

// stream splits one stream's output into entries.
type stream struct {
	w        *Writer
	nameJSON []byte // the stream name as a JSON string

	mu     sync.Mutex
	buf    []byte
	closed bool
}

func (s *stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	total := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.buf = append(s.buf, p...)
			for len(s.buf) > MaxLineSize {
				if err := s.w.writeEntry(s.nameJSON, s.buf[:MaxLineSize]); err != nil {
					return 0, err
				}
				s.buf = s.buf[:copy(s.buf, s.buf[MaxLineSize:])]
			}
			break
		}
		line := p[:i+1]
		p = p[i+1:]
		if len(s.buf) > 0 {
			s.buf = append(s.buf, line...)
			line = s.buf
		}
		// Split over-long lines; the last piece keeps the "\n".
		for len(line)-1 > MaxLineSize {
			if err := s.w.writeEntry(s.nameJSON, line[:MaxLineSize]); err != nil {
				return 0, err
			}
			line = line[MaxLineSize:]
		}
		if err := s.w.writeEntry(s.nameJSON, line); err != nil {
			return 0, err
		}
		s.buf = s.buf[:0]
	}
	return total, nil
}

// Close flushes a buffered partial line as an entry without "\n".
func (s *stream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if len(s.buf) == 0 {
		return nil
	}
	err := s.w.writeEntry(s.nameJSON, s.buf)
	s.buf = nil
	return err
}
