package dockerapi

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestParseDetachKeys(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want []byte
		bad  bool
	}{
		{spec: "", want: []byte{16, 17}},
		{spec: "ctrl-p,ctrl-q", want: []byte{16, 17}},
		{spec: "ctrl-A,x", want: []byte{1, 'x'}},
		{spec: "ctrl-@,ctrl-[,ctrl-\\,ctrl-_", want: []byte{0, 27, 28, 31}},
		{spec: "ctrl-1", bad: true},
		{spec: "ctrl-pp", bad: true},
		{spec: "a,,b", bad: true},
		{spec: "shift-x", bad: true},
	} {
		got, err := parseDetachKeys(tc.spec)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: no error", tc.spec)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("%q: got %v, %v; want %v", tc.spec, got, err, tc.want)
		}
	}
}

func TestDetachReader(t *testing.T) {
	keys := []byte{16, 17}
	for _, tc := range []struct {
		name, in, want string
		detached       bool
	}{
		{name: "plain", in: "echo hi\n", want: "echo hi\n", detached: true}, // EOF detaches too
		{name: "keys", in: "ls\n\x10\x11rest", want: "ls\n", detached: true},
		{name: "half key passed on", in: "a\x10b\x10\x10\x11", want: "a\x10b\x10", detached: true},
		{name: "held key at the end", in: "a\x10", want: "a", detached: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []io.Reader{bytes.NewReader([]byte(tc.in)), iotest.OneByteReader(bytes.NewReader([]byte(tc.in)))} {
				detached := 0
				d := newDetachReader(r, keys, func() { detached++ }, nil)
				got, err := io.ReadAll(d)
				if !errors.Is(err, errDetached) {
					t.Fatalf("err = %v, want errDetached", err)
				}
				if string(got) != tc.want || (detached == 1) != tc.detached {
					t.Errorf("got %q, detached %d times; want %q", got, detached, tc.want)
				}
			}
		})
	}
}
