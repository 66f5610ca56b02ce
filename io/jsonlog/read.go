package jsonlog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
)

// TailAll as ReadOptions.Tail replays every stored entry.
const TailAll = -1

// Poll intervals of a follower: without a Notify function, and as a backstop
// with one (the Writer may be replaced or live in another process).
const (
	pollInterval       = 200 * time.Millisecond
	notifyPollInterval = time.Second
)

// chunkSize is the unit of backward reads for Tail and of follower reads.
const chunkSize = 64 << 10

// ReadOptions select what Read replays.
type ReadOptions struct {
	// Tail is how many of the newest stored entries to replay: TailAll (or
	// any negative value) for all of them, 0 for none (follow only).
	Tail int
	// Since skips entries older than this time; the zero time skips none.
	// Tail counts only entries that pass Since.
	Since time.Time
	// Follow keeps reading new entries, across rotations, until ctx is
	// done.
	Follow bool
	// Notify, if set (usually Writer.Notify of the same log), wakes a
	// follower as soon as something is written; otherwise the file is
	// polled every 200ms.
	Notify func() <-chan struct{}
}

// Read calls fn for each entry of the log at path and its rotated files,
// oldest first, honouring Tail and Since. With Follow it then keeps calling fn
// for new entries, switching to the new file after a rotation, until ctx is
// done (then it returns nil) or fn returns an error (returned as is). A
// follower that falls so far behind that the file after the one it reads was
// already removed by rotation skips the removed entries (with a warning). Without Follow, a done ctx stops Read with ctx.Err().
//
// Corrupt lines are logged and skipped. A missing log is reported as
// errdefs.ErrNotFound.
func Read(ctx context.Context, path string, opts ReadOptions, fn func(Entry) error) error {
	if err := validatePath(path); err != nil {
		return err
	}
	r := &reader{ctx: ctx, path: path, since: opts.Since, fn: fn}
	files, err := openFiles(path)
	if err != nil {
		return err
	}
	defer func() {
		for _, lf := range files {
			if lf.f != r.cur {
				lf.f.Close()
			}
		}
		if r.cur != nil {
			r.cur.Close()
		}
	}()
	if len(files) == 0 {
		return fmt.Errorf("log %s: %w", path, errdefs.ErrNotFound)
	}
	if files[0].name == path {
		r.cur = files[0].f
		// Stop at the last complete line: the rest may be mid-write and
		// is picked up by the follower.
		end, err := lastLineEnd(r.cur, files[0].end)
		if err != nil {
			return err
		}
		files[0].end = end
		r.off = end
	}

	err = r.replay(files, opts.Tail)
	if err == nil && opts.Follow {
		err = r.follow(opts.Notify)
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) && opts.Follow {
		return nil
	}
	return err
}

// logFile is one opened log file and the end of what Read considers stored.
type logFile struct {
	name string
	f    *os.File
	end  int64
}

// openFiles opens path and its rotated files, newest first. Opening them all
// before reading keeps the set stable against a concurrent rotation; a file
// seen twice (renamed between two opens) is kept once.
func openFiles(path string) (_ []logFile, retErr error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("log %s: directory missing: %w", path, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("list logs of %s: %w", path, err)
	}
	var idx []int
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), base+".")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(rest); err == nil && n > 0 && strconv.Itoa(n) == rest {
			idx = append(idx, n)
		}
	}
	slices.Sort(idx)
	names := []string{path}
	for _, n := range idx {
		names = append(names, rotatedName(path, n))
	}

	var files []logFile
	var infos []os.FileInfo
	defer func() {
		if retErr != nil {
			for _, lf := range files {
				lf.f.Close()
			}
		}
	}()
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("open log %s: %w", name, err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("stat log %s: %w", name, err)
		}
		if slices.ContainsFunc(infos, func(o os.FileInfo) bool { return os.SameFile(o, fi) }) {
			f.Close()
			continue
		}
		infos = append(infos, fi)
		files = append(files, logFile{name: name, f: f, end: fi.Size()})
	}
	return files, nil
}

// reader holds one Read call's state.
type reader struct {
	ctx   context.Context
	path  string
	since time.Time
	fn    func(Entry) error

	cur     *os.File // the file at path being followed, nil if none yet
	off     int64    // read offset in cur
	pending []byte   // partial line at the end of cur

	missed bool // the rotated cur was not found last time it was looked for

	// beforeOpenSuccessor, if set, runs between finding where the rotated
	// cur is now and opening its successor: tests rotate there to order
	// a rotation that races the follower.
	beforeOpenSuccessor func()
}

// decode parses one line; corrupt lines are logged and reported as !ok.
func (r *reader) decode(name string, line []byte) (Entry, bool) {
	var e Entry
	if len(bytes.TrimSpace(line)) == 0 {
		return e, false
	}
	if err := json.Unmarshal(line, &e); err != nil {
		log.G(r.ctx).WithError(err).WithField("file", name).Warn("jsonlog: skipping corrupt log line")
		return e, false
	}
	if !r.since.IsZero() && e.Time.Before(r.since) {
		return e, false
	}
	return e, true
}

// emit decodes a line and passes it to fn.
func (r *reader) emit(name string, line []byte) error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	if e, ok := r.decode(name, line); ok {
		return r.fn(e)
	}
	return nil
}

// replay sends the stored entries, oldest first; files is newest first.
func (r *reader) replay(files []logFile, tail int) error {
	if tail < 0 {
		for i := len(files) - 1; i >= 0; i-- {
			lf := files[i]
			err := scanLines(io.NewSectionReader(lf.f, 0, lf.end), func(line []byte) error {
				return r.emit(lf.name, line)
			})
			if err != nil {
				return err
			}
		}
		return nil
	}
	if tail == 0 {
		return nil
	}
	// Read backwards from the newest file until tail entries are found.
	var newest []Entry
	for _, lf := range files {
		err := readBackward(lf.f, lf.end, func(line []byte) bool {
			if e, ok := r.decode(lf.name, line); ok {
				newest = append(newest, e)
			}
			return len(newest) == tail
		})
		if err != nil {
			return fmt.Errorf("read log %s: %w", lf.name, err)
		}
		if len(newest) == tail {
			break
		}
	}
	for i := len(newest) - 1; i >= 0; i-- {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		if err := r.fn(newest[i]); err != nil {
			return err
		}
	}
	return nil
}

// follow sends entries appended after the replay, until ctx is done or fn
// fails.
func (r *reader) follow(notify func() <-chan struct{}) error {
	interval := pollInterval
	if notify != nil {
		interval = notifyPollInterval
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		// Take the channel before reading so a write in between wakes us.
		var wake <-chan struct{}
		if notify != nil {
			wake = notify()
		}
		progressed, err := r.readNew()
		if err != nil {
			return err
		}
		if progressed {
			continue
		}
		switched, err := r.checkRotation()
		if err != nil {
			return err
		}
		if switched {
			continue
		}
		select {
		case <-r.ctx.Done():
			return r.ctx.Err()
		case <-wake:
		case <-ticker.C:
		}
	}
}

// readNew reads what was appended to cur since off and emits complete lines.
func (r *reader) readNew() (bool, error) {
	if r.cur == nil {
		return false, nil
	}
	progressed := false
	buf := make([]byte, chunkSize)
	for {
		n, err := r.cur.ReadAt(buf, r.off)
		if n > 0 {
			progressed = true
			r.off += int64(n)
			data := buf[:n]
			for {
				i := bytes.IndexByte(data, '\n')
				if i < 0 {
					r.pending = append(r.pending, data...)
					break
				}
				line := data[:i]
				if len(r.pending) > 0 {
					r.pending = append(r.pending, line...)
					line = r.pending
				}
				if err := r.emit(r.path, line); err != nil {
					return progressed, err
				}
				r.pending = r.pending[:0]
				data = data[i+1:]
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return progressed, nil
			}
			return progressed, fmt.Errorf("read log %s: %w", r.path, err)
		}
	}
}

// checkRotation switches to the file now at path if it is not cur (after
// reading cur to its end) and rewinds after a truncation. It reports whether
// anything changed.
func (r *reader) checkRotation() (bool, error) {
	fi, err := os.Stat(r.path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil // between rename and create; poll again
		}
		return false, fmt.Errorf("stat log %s: %w", r.path, err)
	}
	if r.cur != nil {
		st, err := r.cur.Stat()
		if err != nil {
			return false, fmt.Errorf("stat log %s: %w", r.path, err)
		}
		if os.SameFile(fi, st) {
			if st.Size() < r.off {
				log.G(r.ctx).WithField("file", r.path).Warn("jsonlog: log file was truncated; following from its start")
				r.off, r.pending = 0, r.pending[:0]
				return true, nil
			}
			return false, nil
		}
		// Rotated: the writer never touches the old file again, so drain it.
		if _, err := r.readNew(); err != nil {
			return false, err
		}
		if len(r.pending) > 0 {
			log.G(r.ctx).WithField("file", r.path).Warn("jsonlog: skipping incomplete last line of a rotated log")
		}
		f, err := r.openSuccessor(st)
		if err != nil || f == nil {
			// f == nil: a rotation is moving the files right now; it
			// wakes the follower when done (or the next tick finds the
			// way on).
			return false, err
		}
		r.cur.Close()
		r.cur, r.off, r.pending = f, 0, r.pending[:0]
		return true, nil
	}
	f, err := os.Open(r.path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("open log %s: %w", r.path, err)
	}
	r.cur, r.off, r.pending = f, 0, r.pending[:0]
	return true, nil
}

// openSuccessor opens the file written after old, which has been rotated:
// if old is now path.k, that is path.(k-1) (path for k 1). It returns a nil
// file when that cannot be told yet because a rotation is renaming the files
// right now; the caller retries on the next wake-up.
//
// A rotation renames path.(n-1) to path.n, ..., path to path.1, in that
// order, so old moves away from path.k before path.(k-1) is replaced. Hence
// the file opened at path.(k-1) is old's successor if old is still at path.k
// after the open; without that check a rotation between the look-up and the
// open would make the follower skip a whole file. For the same reason a gap
// in the numbering is not the end of the rotated files: it is a rename in
// progress.
//
// If old is gone (removed as the oldest, or not found twice in a row), the
// files in between are lost to this follower and it goes on with path.
func (r *reader) openSuccessor(old os.FileInfo) (*os.File, error) {
	k, err := r.rotatedIndex(old)
	if err != nil {
		return nil, err
	}
	if k > 0 {
		r.missed = false
	}
	next := r.path
	switch {
	case k > 1:
		next = rotatedName(r.path, k-1)
	case k == 0 && linked(old) && !r.missed:
		// Renamed, but not found under a rotated name: the scan
		// likely raced a rename, so look again on the next wake-up.
		// A second miss means it was renamed out of the scheme.
		r.missed = true
		return nil, nil
	case k == 0:
		r.missed = false
		log.G(r.ctx).WithField("file", r.path).Warn("jsonlog: follower fell behind rotation; some entries were skipped")
	}
	if r.beforeOpenSuccessor != nil {
		r.beforeOpenSuccessor()
	}
	f, err := os.Open(next)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil // between a rename and the next one, or the create
		}
		return nil, fmt.Errorf("open log %s: %w", next, err)
	}
	if k == 0 {
		return f, nil
	}
	fi, err := os.Stat(rotatedName(r.path, k))
	if err != nil || !os.SameFile(fi, old) {
		// old moved on while next was opened: next may already hold a
		// newer file.
		f.Close()
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("stat log %s: %w", rotatedName(r.path, k), err)
		}
		return nil, nil
	}
	return f, nil
}

// rotatedIndex returns k if old is now path.k, or 0 if it is not found. It
// looks at every path.k in the directory, past gaps.
func (r *reader) rotatedIndex(old os.FileInfo) (int, error) {
	dir, base := filepath.Split(r.path)
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("list logs of %s: %w", r.path, err)
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), base+".")
		if !ok {
			continue
		}
		k, err := strconv.Atoi(rest)
		if err != nil || k <= 0 || strconv.Itoa(k) != rest {
			continue
		}
		if fi, err := os.Stat(rotatedName(r.path, k)); err == nil && os.SameFile(fi, old) {
			return k, nil
		}
	}
	return 0, nil
}

// linked reports whether the file of fi, stated through an open descriptor,
// still has a name.
func linked(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Nlink > 0
}

// scanLines calls fn for each line of rd without its "\n", including a last
// line without one. Lines of any length are supported.
func scanLines(rd io.Reader, fn func(line []byte) error) error {
	br := bufio.NewReaderSize(rd, chunkSize)
	var long []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, chunk...)
			continue
		}
		if len(long) > 0 {
			long = append(long, chunk...)
			chunk = long
		}
		if err == nil {
			if ferr := fn(chunk[:len(chunk)-1]); ferr != nil {
				return ferr
			}
			long = long[:0]
			continue
		}
		if errors.Is(err, io.EOF) {
			if len(chunk) > 0 {
				return fn(chunk)
			}
			return nil
		}
		return err
	}
}

// readBackward calls fn for each line of f[0:end), newest first, until fn
// returns true. It reads chunkSize blocks from the end so a small tail of a
// large file costs little.
func readBackward(f io.ReaderAt, end int64, fn func(line []byte) bool) error {
	pos := end
	var carry []byte // start of a line whose beginning is in an earlier block
	for pos > 0 {
		n := min(int64(chunkSize), pos)
		pos -= n
		buf := make([]byte, n, n+int64(len(carry)))
		if got, err := f.ReadAt(buf, pos); int64(got) < n {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		data := append(buf, carry...)
		e := len(data)
		for {
			i := bytes.LastIndexByte(data[:e], '\n')
			if i < 0 {
				break
			}
			if line := data[i+1 : e]; len(line) > 0 && fn(line) {
				return nil
			}
			e = i
		}
		carry = data[:e]
	}
	if len(carry) > 0 {
		fn(carry)
	}
	return nil
}

// lastLineEnd returns the offset just past the last "\n" in f[0:end), or 0.
func lastLineEnd(f io.ReaderAt, end int64) (int64, error) {
	buf := make([]byte, 4096)
	for pos := end; pos > 0; {
		n := min(int64(len(buf)), pos)
		pos -= n
		if got, err := f.ReadAt(buf[:n], pos); int64(got) < n {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("read log: %w", err)
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return pos + int64(i) + 1, nil
		}
	}
	return 0, nil
}
