package dockerapi

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/containerd/errdefs"
)

// defaultDetachKeys is Docker's escape sequence: ctrl-p, ctrl-q.
const defaultDetachKeys = "ctrl-p,ctrl-q"

// errDetached ends a session's stdin without closing the process's: the
// client detached, the process keeps its stdin for the next attacher.
var errDetached = errors.New("detached from the session; the process keeps running")

// parseDetachKeys reads Docker's --detach-keys: comma-separated single
// characters or ctrl-<c> where c is a letter or one of @ [ \ ] ^ _.
// Empty is the default, ctrl-p,ctrl-q.
func parseDetachKeys(spec string) ([]byte, error) {
	if spec == "" {
		spec = defaultDetachKeys
	}
	var keys []byte
	for _, k := range strings.Split(spec, ",") {
		switch {
		case len(k) == 1:
			keys = append(keys, k[0])
		case len(k) == 6 && strings.EqualFold(k[:5], "ctrl-"):
			c := k[5]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			switch {
			case c >= 'a' && c <= 'z':
				keys = append(keys, c-'a'+1)
			case c == '@':
				keys = append(keys, 0)
			case c >= '[' && c <= '_':
				keys = append(keys, c-'['+27)
			default:
				return nil, invalidDetachKeys(spec)
			}
		default:
			return nil, invalidDetachKeys(spec)
		}
	}
	return keys, nil
}

func invalidDetachKeys(spec string) error {
	if len(spec) > 64 {
		spec = spec[:64] + "..."
	}
	return fmt.Errorf("invalid detach keys (%q) provided: want a comma-separated list of characters or ctrl-<letter>, such as ctrl-p,ctrl-q: %w", spec, errdefs.ErrInvalidArgument)
}

// detachReader is the stdin of a TTY session as dockerd treats it: the
// detach keys, never passed on, end the session; so does the client's
// EOF or hang-up. Both leave the process's stdin open (a terminal is not closed when
// one client goes), and call detach to end the session. After that, Read
// returns errDetached once hold is closed (nil: at once): an exec's copy
// closes the process's stdin on any error, so it must not see one before
// the process ended.
type detachReader struct {
	r      io.Reader
	keys   []byte
	detach func()
	hold   <-chan struct{}

	held    int    // leading bytes of keys seen and not passed on
	pending []byte // bytes to pass on
	buf     []byte
	err     error
}

func newDetachReader(r io.Reader, keys []byte, detach func(), hold <-chan struct{}) *detachReader {
	return &detachReader{r: r, keys: keys, detach: detach, hold: hold}
}

func (d *detachReader) Read(p []byte) (int, error) {
	for len(d.pending) == 0 {
		if d.err != nil {
			if d.err == errDetached && d.hold != nil {
				<-d.hold
			}
			return 0, d.err
		}
		if len(d.buf) < len(p) {
			d.buf = make([]byte, len(p))
		}
		n, err := d.r.Read(d.buf[:len(p)])
		d.scan(d.buf[:n])
		if d.err == nil && err != nil {
			// EOF or a hang-up: the terminal stays open all the same.
			d.err = errDetached
			d.detach()
		}
	}
	n := copy(p, d.pending)
	d.pending = d.pending[n:]
	return n, nil
}

// scan passes b on, holding back what may be the start of the keys.
func (d *detachReader) scan(b []byte) {
	for _, c := range b {
		if len(d.keys) == 0 {
			d.pending = append(d.pending, c)
			continue
		}
		if c == d.keys[d.held] {
			d.held++
			if d.held == len(d.keys) {
				d.held = 0
				d.err = errDetached
				d.detach()
				return
			}
			continue
		}
		if d.held > 0 {
			d.pending = append(d.pending, d.keys[:d.held]...)
			d.held = 0
			if c == d.keys[0] {
				d.held = 1
				continue
			}
		}
		d.pending = append(d.pending, c)
	}
}
