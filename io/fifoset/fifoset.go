// Package fifoset owns the named pipes (FIFOs) that carry one container
// process's stdio between the engine and the containerd shim.
//
// A Set only names the FIFOs and owns their private directory
// (<root>/<containerID>/<processID>, mode 0700); Open creates the FIFOs
// (mode 0600) and opens the engine-side ends, returning Pipes. The shim opens
// the other ends. The layout matches containerd's pkg/cio FIFO sets, so a Set
// can be handed to containerd through Config and rebuilt with FromPaths from
// the paths containerd reports for a running task after an engine restart.
//
// Concurrency: a Set is an immutable value once built and may be shared;
// Remove must not race with Open of the same Set. Pipes may be closed from any
// goroutine; Close is safe to call more than once.
//
// Zero value: a zero Set names no FIFOs; Open on it returns empty Pipes and
// Remove does nothing. Use New or FromPaths to build a useful Set.
package fifoset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/identifiers"
	"github.com/containerd/errdefs"
	"github.com/containerd/fifo"
	"github.com/hashicorp/go-multierror"
)

// Names of the FIFOs inside a Set's directory.
const (
	stdinName  = "stdin"
	stdoutName = "stdout"
	stderrName = "stderr"
)

const (
	dirMode  os.FileMode = 0o700
	fifoMode os.FileMode = 0o600
)

// ValidateID reports an error of class errdefs.ErrInvalidArgument unless id
// is a containerd identifier (identifiers.Validate: letters and digits
// joined by single '.', '_' or '-', at most 76 characters), which keeps an
// id a single, non-hidden path element.
func ValidateID(id string) error {
	if err := identifiers.Validate(id); err != nil {
		return fmt.Errorf("%w; want letters and digits joined by single '.', '_' or '-', at most 76 characters", err)
	}
	return nil
}

// Set names the FIFOs of one process. Paths are empty for streams not used
// (Stdin when the process has no stdin, Stderr when Terminal is set, since a
// terminal merges stderr into stdout).
type Set struct {
	// Dir is the private directory holding the FIFOs; Remove deletes it.
	Dir string
	// Stdin, Stdout and Stderr are the FIFO paths, empty when unused.
	Stdin, Stdout, Stderr string
	// Terminal is true when the process runs with a TTY.
	Terminal bool
}

// New validates both ids, creates root (MkdirAll, 0700), root/<containerID>
// (0700) and root/<containerID>/<processID> (0700), and returns the FIFO paths
// ("stdin", "stdout", "stderr" inside Dir). It does not create the FIFOs; Open
// does. The process directory must not exist yet: a leftover one is reported
// as errdefs.ErrAlreadyExists so two live processes never share FIFOs.
func New(root, containerID, processID string, stdin, terminal bool) (*Set, error) {
	if root == "" || !filepath.IsAbs(root) {
		return nil, fmt.Errorf("invalid fifo root %q: want an absolute path: %w", root, errdefs.ErrInvalidArgument)
	}
	if err := ValidateID(containerID); err != nil {
		return nil, fmt.Errorf("container: %w", err)
	}
	if err := ValidateID(processID); err != nil {
		return nil, fmt.Errorf("process: %w", err)
	}
	root = filepath.Clean(root)
	if err := os.MkdirAll(root, dirMode); err != nil {
		return nil, fmt.Errorf("create fifo root %s: %w", root, err)
	}
	cdir := filepath.Join(root, containerID)
	if err := os.Mkdir(cdir, dirMode); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("create fifo dir %s: %w", cdir, err)
	}
	// A pre-existing entry must be a real directory, not a symlink planted
	// to redirect the FIFOs elsewhere.
	if fi, err := os.Lstat(cdir); err != nil {
		return nil, fmt.Errorf("check fifo dir %s: %w", cdir, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("fifo dir %s is not a directory: remove it and retry: %w", cdir, errdefs.ErrFailedPrecondition)
	}
	dir := filepath.Join(cdir, processID)
	if err := os.Mkdir(dir, dirMode); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("fifo dir %s already exists: a process %q of container %q is live or was not cleaned up; remove its Set first: %w",
				dir, processID, containerID, errdefs.ErrAlreadyExists)
		}
		return nil, fmt.Errorf("create fifo dir %s: %w", dir, err)
	}
	s := &Set{
		Dir:      dir,
		Stdout:   filepath.Join(dir, stdoutName),
		Terminal: terminal,
	}
	if stdin {
		s.Stdin = filepath.Join(dir, stdinName)
	}
	if !terminal {
		s.Stderr = filepath.Join(dir, stderrName)
	}
	return s, nil
}

// RemoveContainer removes root/<containerID> and every process directory in
// it. Call it once no process of the container uses its FIFOs any more.
func RemoveContainer(root, containerID string) error {
	if root == "" || !filepath.IsAbs(root) {
		return fmt.Errorf("invalid fifo root %q: want an absolute path: %w", root, errdefs.ErrInvalidArgument)
	}
	if err := ValidateID(containerID); err != nil {
		return fmt.Errorf("container: %w", err)
	}
	dir := filepath.Join(filepath.Clean(root), containerID)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove fifo dir %s: %w", dir, err)
	}
	return nil
}

// FromPaths rebuilds a Set from the paths containerd reports for an existing
// task (re-attach after an engine restart). Dir is the directory of the first
// non-empty path. The paths are not checked here; Open reports missing ones.
func FromPaths(stdin, stdout, stderr string, terminal bool) *Set {
	s := &Set{Stdin: stdin, Stdout: stdout, Stderr: stderr, Terminal: terminal}
	if terminal {
		s.Stderr = ""
	}
	for _, p := range []string{stdin, stdout, stderr} {
		if p != "" {
			s.Dir = filepath.Dir(p)
			break
		}
	}
	return s
}

// Config returns the cio.Config that tells containerd where the FIFOs are.
func (s *Set) Config() cio.Config {
	return cio.Config{Stdin: s.Stdin, Stdout: s.Stdout, Stderr: s.Stderr, Terminal: s.Terminal}
}

// Open creates the FIFOs that do not exist yet (mode 0600) and opens the
// engine-side ends without blocking: stdin write-only, stdout and stderr
// read-only, as containerd's pkg/cio does. The opens complete in the
// background once the shim opens the other ends; reads and writes wait for
// that.
//
// ctx bounds that wait: if ctx is done before the shim has opened a FIFO, the
// pipe is closed and its reads/writes fail. Pass a context that lives until
// the task or exec process is started, not a short request timeout. Closing
// the Pipes also abandons pending opens.
//
// On error every pipe opened so far is closed.
func (s *Set) Open(ctx context.Context) (_ *Pipes, retErr error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open fifos in %s: %w", s.Dir, err)
	}
	p := &Pipes{}
	defer func() {
		if retErr != nil {
			_ = p.Close()
		}
	}()
	if s.Stdin != "" {
		f, err := fifo.OpenFifo(ctx, s.Stdin, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_NONBLOCK, fifoMode)
		if err != nil {
			return nil, fmt.Errorf("open stdin fifo %s: %w", s.Stdin, err)
		}
		p.Stdin = f
	}
	if s.Stdout != "" {
		f, err := fifo.OpenFifo(ctx, s.Stdout, syscall.O_RDONLY|syscall.O_CREAT|syscall.O_NONBLOCK, fifoMode)
		if err != nil {
			return nil, fmt.Errorf("open stdout fifo %s: %w", s.Stdout, err)
		}
		p.Stdout = f
	}
	if !s.Terminal && s.Stderr != "" {
		f, err := fifo.OpenFifo(ctx, s.Stderr, syscall.O_RDONLY|syscall.O_CREAT|syscall.O_NONBLOCK, fifoMode)
		if err != nil {
			return nil, fmt.Errorf("open stderr fifo %s: %w", s.Stderr, err)
		}
		p.Stderr = f
	}
	return p, nil
}

// Remove removes Dir and everything in it. It does nothing for a Set without
// a Dir.
func (s *Set) Remove() error {
	if s.Dir == "" {
		return nil
	}
	if err := os.RemoveAll(s.Dir); err != nil {
		return fmt.Errorf("remove fifo dir %s: %w", s.Dir, err)
	}
	return nil
}

// Pipes are the engine-side ends of a Set's FIFOs; a field is nil when its
// stream is unused.
type Pipes struct {
	// Stdin feeds the process's standard input.
	Stdin io.WriteCloser
	// Stdout and Stderr carry the process's output.
	Stdout, Stderr io.ReadCloser

	once sync.Once
	err  error
}

// Close closes every pipe, returning all errors together. Later calls return
// the first call's result.
func (p *Pipes) Close() error {
	p.once.Do(func() {
		var errs *multierror.Error
		for _, c := range []io.Closer{p.Stdin, p.Stdout, p.Stderr} {
			if c == nil {
				continue
			}
			if err := c.Close(); err != nil {
				errs = multierror.Append(errs, err)
			}
		}
		p.err = errs.ErrorOrNil()
	})
	return p.err
}
