package api

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Frame kinds of the daemon-to-client half of a hijacked stream. Each frame
// is an 8-byte header (kind, three zero bytes, big-endian uint32 length)
// and its payload, as docker's stdcopy with one more kind for status.
const (
	FrameStdout byte = 1
	FrameStderr byte = 2
	FrameStatus byte = 3 // payload: a JSON StreamStatus
)

// MaxFrame is the largest payload a reader accepts.
const MaxFrame = 1 << 20

// FrameWriter writes frames to w; it is safe for concurrent use so that
// stdout, stderr and status can share one connection.
type FrameWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewFrameWriter returns a FrameWriter on w.
func NewFrameWriter(w io.Writer) *FrameWriter { return &FrameWriter{w: w} }

// WriteFrame writes one frame of the given kind.
func (f *FrameWriter) WriteFrame(kind byte, p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(p) > 0 {
		n := min(len(p), MaxFrame)
		var hdr [8]byte
		hdr[0] = kind
		binary.BigEndian.PutUint32(hdr[4:], uint32(n))
		if _, err := f.w.Write(hdr[:]); err != nil {
			return err
		}
		if _, err := f.w.Write(p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// WriteStatus writes a FrameStatus frame.
func (f *FrameWriter) WriteStatus(s StreamStatus) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return f.WriteFrame(FrameStatus, b)
}

// Stream returns an io.Writer writing frames of one kind.
func (f *FrameWriter) Stream(kind byte) io.Writer { return streamWriter{f: f, kind: kind} }

type streamWriter struct {
	f    *FrameWriter
	kind byte
}

func (s streamWriter) Write(p []byte) (int, error) {
	if err := s.f.WriteFrame(s.kind, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// ErrNoStatus is returned by ReadFrames when the stream ended without a
// final status: the daemon went away.
var ErrNoStatus = errors.New("stream ended before the daemon reported an exit status")

// ReadFrames copies stdout and stderr frames from r to the writers and calls
// onStatus for each status frame. It returns the last status once the
// stream ends, and ErrNoStatus when there was no final one.
func ReadFrames(r io.Reader, stdout, stderr io.Writer, onStatus func(StreamStatus)) (StreamStatus, error) {
	var last StreamStatus
	final := false
	var hdr [8]byte
	buf := make([]byte, 32<<10)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) && final {
				return last, nil
			}
			if final {
				return last, nil
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return last, ErrNoStatus
			}
			return last, err
		}
		n := int(binary.BigEndian.Uint32(hdr[4:]))
		if n > MaxFrame {
			return last, fmt.Errorf("stream frame of %d bytes is larger than %d: not an engine stream", n, MaxFrame)
		}
		if n > len(buf) {
			buf = make([]byte, n)
		}
		p := buf[:n]
		if _, err := io.ReadFull(r, p); err != nil {
			return last, fmt.Errorf("read stream frame: %w", err)
		}
		switch hdr[0] {
		case FrameStdout, FrameStderr:
			w := stdout
			if hdr[0] == FrameStderr {
				w = stderr
			}
			if w != nil {
				if _, err := w.Write(p); err != nil {
					return last, err
				}
			}
		case FrameStatus:
			var s StreamStatus
			if err := json.Unmarshal(p, &s); err != nil {
				return last, fmt.Errorf("decode stream status: %w", err)
			}
			if onStatus != nil {
				onStatus(s)
			}
			if s.Exited || s.Error != "" || s.Detached {
				last, final = s, true
			}
		default:
			return last, fmt.Errorf("unknown stream frame kind %d", hdr[0])
		}
	}
}
