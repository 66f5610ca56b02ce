package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"
)

func TestTerminal(t *testing.T) {
	if openTerminal(strings.NewReader(""), os.Stdout) != nil {
		t.Fatal("a reader is not a terminal")
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "file"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if openTerminal(f, f) != nil {
		t.Fatal("a regular file is not a terminal")
	}

	master, slavePath, err := console.NewPty()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer master.Close()
	slave, err := os.OpenFile(slavePath, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer slave.Close()
	if err := master.Resize(console.WinSize{Width: 123, Height: 45}); err != nil {
		t.Fatal(err)
	}
	term := openTerminal(slave, slave)
	if term == nil {
		t.Fatal("a pty is a terminal")
	}
	if w, h, ok := term.size(); !ok || w != 123 || h != 45 {
		t.Fatalf("size = %d x %d (%v), want 123 x 45", w, h, ok)
	}
	lflag := func() uint32 {
		tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		return tio.Lflag
	}
	before := lflag()
	if before&unix.ICANON == 0 {
		t.Fatal("a fresh pty is in canonical mode")
	}
	restore, err := term.makeRaw()
	if err != nil {
		t.Fatal(err)
	}
	if l := lflag(); l&(unix.ICANON|unix.ECHO|unix.ISIG) != 0 {
		t.Fatalf("raw mode keeps lflag %#x", l)
	}
	restore()
	if l := lflag(); l != before {
		t.Fatalf("restored lflag %#x, want %#x", l, before)
	}
}
