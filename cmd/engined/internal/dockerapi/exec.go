package dockerapi

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/moby/moby/api/types/container"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/cmd/engined/internal/server"
)

// maxExecRecords bounds the exec records kept for inspection; the oldest
// finished ones go first.
const maxExecRecords = 1024

// execRecord is an exec as Docker has it: created first, started later,
// inspected after its end for its exit code.
type execRecord struct {
	id          string
	containerID string
	cfg         container.ExecCreateRequest
	created     time.Time

	mu       sync.Mutex
	started  bool
	x        server.Exec
	exitCode *int
	ended    time.Time
	size     [2]uint32 // a resize that came before the process ran
}

func (e *execRecord) running() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.started && e.exitCode == nil
}

func (e *execRecord) finish(code int) {
	e.mu.Lock()
	e.exitCode = &code
	e.ended = time.Now()
	e.mu.Unlock()
}

func newExecID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) execRecord(id string) (*execRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if x := s.execs[id]; x != nil {
		return x, nil
	}
	return nil, fmt.Errorf("No such exec instance: %s: %w", id, errdefs.ErrNotFound)
}

func (s *Server) createExec(w http.ResponseWriter, r *http.Request) error {
	var req container.ExecCreateRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if len(req.Cmd) == 0 || req.Cmd[0] == "" {
		return fmt.Errorf("no exec command specified: %w", errdefs.ErrInvalidArgument)
	}
	if err := refuseUnsupported([]unsupportedField{{"Privileged", req.Privileged}}); err != nil {
		return err
	}
	if _, err := parseDetachKeys(req.DetachKeys); err != nil {
		return err
	}
	c, err := s.engine.Inspect(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	if c.State != backend.StateRunning {
		return fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrConflict)
	}
	rec := &execRecord{id: newExecID(), containerID: c.ID, cfg: req, created: time.Now()}
	if req.ConsoleSize != nil {
		rec.size = [2]uint32{uint32(req.ConsoleSize[1]), uint32(req.ConsoleSize[0])}
	}
	s.mu.Lock()
	if len(s.execs) >= maxExecRecords {
		s.pruneExecsLocked()
	}
	if len(s.execs) >= maxExecRecords {
		s.mu.Unlock()
		return fmt.Errorf("%d execs are created and not finished: start or let them end first: %w", maxExecRecords, errdefs.ErrResourceExhausted)
	}
	s.execs[rec.id] = rec
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, container.ExecCreateResponse{ID: rec.id})
	return nil
}

// pruneExecsLocked forgets finished execs, oldest first, down to half the
// limit; and created ones never started for ten minutes.
func (s *Server) pruneExecsLocked() {
	for id, x := range s.execs {
		x.mu.Lock()
		old := (x.exitCode != nil && time.Since(x.ended) > time.Minute) || (!x.started && time.Since(x.created) > 10*time.Minute)
		x.mu.Unlock()
		if old {
			delete(s.execs, id)
		}
	}
}

func (s *Server) startExec(w http.ResponseWriter, r *http.Request) error {
	var req container.ExecStartRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	rec, err := s.execRecord(r.PathValue("id"))
	if err != nil {
		return err
	}
	rec.mu.Lock()
	if rec.started {
		rec.mu.Unlock()
		return fmt.Errorf("exec %s has already been started: %w", rec.id, errdefs.ErrConflict)
	}
	rec.started = true
	if req.ConsoleSize != nil {
		rec.size = [2]uint32{uint32(req.ConsoleSize[1]), uint32(req.ConsoleSize[0])}
	}
	rec.mu.Unlock()
	cfg := rec.cfg
	tty := cfg.Tty || req.Tty
	opts := backend.ExecOptions{Cmd: cfg.Cmd, Env: cfg.Env, WorkingDir: cfg.WorkingDir, Tty: tty, User: cfg.User}
	if req.Detach {
		// The process outlives the request: it belongs to the server.
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			return fmt.Errorf("the engine is shutting down: %w", errdefs.ErrUnavailable)
		}
		s.sessions.Add(1)
		s.mu.Unlock()
		x, err := s.engine.Exec(s.ctx, rec.containerID, opts)
		if err != nil {
			s.sessions.Done()
			rec.finish(-1)
			return err
		}
		s.execStarted(rec, x)
		go func() {
			defer s.sessions.Done()
			code, err := x.Wait(s.ctx)
			if err != nil {
				code = -1
			}
			rec.finish(code)
		}()
		w.WriteHeader(http.StatusOK)
		return nil
	}
	ss, err := s.hijack(w, r, streamType(tty), cfg.AttachStdin)
	if err != nil || ss == nil {
		return err
	}
	defer ss.done()
	// ended is closed once the process ended (or the server stops): a
	// detached terminal's stdin waits for it (see detachReader).
	ended := make(chan struct{})
	endedOnce := sync.OnceFunc(func() { close(ended) })
	handedOff := false
	defer func() {
		if !handedOff {
			endedOnce()
		}
	}()
	opts.Stdout, opts.Stderr = outputs(ss.out, tty, cfg.AttachStdout, cfg.AttachStderr)
	if cfg.AttachStdin {
		opts.Stdin = ss.stdin()
		if tty {
			keys, _ := parseDetachKeys(cfg.DetachKeys)
			opts.Stdin = newDetachReader(opts.Stdin, keys, ss.cancel, ended)
		}
	}
	x, err := s.engine.Exec(ss.ctx, rec.containerID, opts)
	if err != nil {
		rec.finish(execStartCode(err))
		errOut := opts.Stdout
		if errOut == nil {
			errOut = opts.Stderr
		}
		fail(errOut, err)
		return nil
	}
	s.execStarted(rec, x)
	code, err := x.Wait(ss.ctx)
	if err != nil && ss.ctx.Err() != nil && s.ctx.Err() == nil {
		// The client detached or hung up: the process runs on, as a
		// detached exec does, and its record learns its exit.
		s.mu.Lock()
		if !s.closing {
			s.sessions.Add(1)
			handedOff = true
			go func() {
				defer s.sessions.Done()
				defer endedOnce()
				code, err := x.Wait(s.ctx)
				if err != nil {
					code = -1
				}
				rec.finish(code)
			}()
			s.mu.Unlock()
			return nil
		}
		s.mu.Unlock()
	}
	if err != nil {
		code = -1
	}
	rec.finish(code)
	return nil
}

// execStartCode is the exit code docker gives an exec that could not run.
func execStartCode(err error) int {
	if errdefs.IsInvalidArgument(err) {
		msg := err.Error()
		for _, notFound := range []string{"not found", "no such file"} {
			if contains(msg, notFound) {
				return 127
			}
		}
		return 126
	}
	return -1
}

// execStarted records the running process and applies a resize that came
// before it ran.
func (s *Server) execStarted(rec *execRecord, x server.Exec) {
	rec.mu.Lock()
	rec.x = x
	size := rec.size
	rec.mu.Unlock()
	if size[0] > 0 && size[1] > 0 {
		if err := x.Resize(s.ctx, size[0], size[1]); err != nil {
			log.G(s.ctx).WithError(err).WithField("exec", rec.id).Debug("exec: initial terminal size")
		}
	}
}

func (s *Server) resizeExec(w http.ResponseWriter, r *http.Request) error {
	wd, ht, err := terminalSize(r)
	if err != nil {
		return err
	}
	rec, err := s.execRecord(r.PathValue("id"))
	if err != nil {
		return err
	}
	rec.mu.Lock()
	x := rec.x
	if x == nil {
		rec.size = [2]uint32{wd, ht}
	}
	done := rec.exitCode != nil
	rec.mu.Unlock()
	if x != nil && !done && wd > 0 && ht > 0 {
		if err := x.Resize(r.Context(), wd, ht); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) inspectExec(w http.ResponseWriter, r *http.Request) error {
	rec, err := s.execRecord(r.PathValue("id"))
	if err != nil {
		return err
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := container.ExecInspectResponse{
		ID:          rec.id,
		Running:     rec.started && rec.exitCode == nil,
		ExitCode:    rec.exitCode,
		OpenStdin:   rec.cfg.AttachStdin,
		OpenStdout:  rec.cfg.AttachStdout,
		OpenStderr:  rec.cfg.AttachStderr,
		CanRemove:   rec.exitCode != nil,
		ContainerID: rec.containerID,
		ProcessConfig: &container.ExecProcessConfig{
			Tty: rec.cfg.Tty, User: rec.cfg.User, Entrypoint: rec.cfg.Cmd[0], Arguments: append([]string{}, rec.cfg.Cmd[1:]...),
		},
	}
	if rec.x != nil && out.Running {
		out.Pid = int(rec.x.Pid())
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
