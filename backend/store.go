package backend

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
)

// recordVersion is the format version written by this engine. Older
// versions are read through decodeRecord; newer ones are refused, never
// guessed at.
const recordVersion = 1

const (
	recordFile = "record.json"
	logFile    = "container.log"
	tmpPrefix  = ".record-"
)

// recordEnvelope is the on-disk form of a record: the version first, so a
// later format can tell what it reads.
type recordEnvelope struct {
	Version   int             `json:"version"`
	Container json.RawMessage `json:"container"`
}

// beforeRename, when set by tests, runs after the temporary record file is
// written and synced and before it is renamed into place; an error aborts the
// write there, as a crash would.
var beforeRename func(tmpPath string) error

// store keeps one record file per container under dir. It is not
// synchronised: the Engine serialises writes of one container.
type store struct {
	dir string // <root>/containers
}

// validateID accepts only engine-generated container ids (64 lowercase hex
// characters), so an id can be used as a path element.
func validateID(id string) error {
	if len(id) != 64 || strings.ToLower(id) != id {
		return fmt.Errorf("invalid container id %q: want 64 lowercase hex characters: %w", id, errdefs.ErrInvalidArgument)
	}
	if _, err := hex.DecodeString(id); err != nil {
		return fmt.Errorf("invalid container id %q: want 64 lowercase hex characters: %w", id, errdefs.ErrInvalidArgument)
	}
	return nil
}

func (s *store) containerDir(id string) string { return filepath.Join(s.dir, id) }

// create makes the container's directory (0700).
func (s *store) create(id string) error {
	if err := validateID(id); err != nil {
		return err
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", s.dir, err)
	}
	if err := os.Mkdir(s.containerDir(id), 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("container directory %s exists: %w", s.containerDir(id), errdefs.ErrAlreadyExists)
		}
		return fmt.Errorf("create container directory: %w", err)
	}
	// The new directory's entry in the containers directory must reach the
	// disk too, or a power loss could keep the container in containerd and
	// lose its record (write syncs only the container's own directory).
	if err := syncDir(s.dir); err != nil {
		os.Remove(s.containerDir(id))
		return fmt.Errorf("create container directory: %w", err)
	}
	return nil
}

// write stores c atomically: a temporary file in the same directory, fsync,
// rename over the record, fsync of the directory. A crash at any point leaves
// either the old or the new record (and maybe a stray temporary file, removed
// at the next load).
func (s *store) write(c *Container) (retErr error) {
	if err := validateID(c.ID); err != nil {
		return err
	}
	body, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode record of %s: %w", c.ID, err)
	}
	data, err := json.MarshalIndent(recordEnvelope{Version: recordVersion, Container: body}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode record of %s: %w", c.ID, err)
	}
	dir := s.containerDir(c.ID)
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return fmt.Errorf("write record of %s: %w", c.ID, err)
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		if retErr != nil && !renamed && !errors.Is(retErr, errInjected) {
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write record of %s: %w", c.ID, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write record of %s: %w", c.ID, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync record of %s: %w", c.ID, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write record of %s: %w", c.ID, err)
	}
	if beforeRename != nil {
		if err := beforeRename(tmp); err != nil {
			return fmt.Errorf("write record of %s: %w: %w", c.ID, errInjected, err)
		}
	}
	if err := os.Rename(tmp, filepath.Join(dir, recordFile)); err != nil {
		return fmt.Errorf("write record of %s: %w", c.ID, err)
	}
	renamed = true
	return syncDir(dir)
}

// errInjected marks a write stopped by the beforeRename test hook: its
// temporary file stays, as after a crash.
var errInjected = errors.New("injected fault")

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// remove deletes the container's directory with its record and log.
func (s *store) remove(id string) error {
	if err := validateID(id); err != nil {
		return err
	}
	if err := os.RemoveAll(s.containerDir(id)); err != nil {
		return fmt.Errorf("remove state of %s: %w", id, err)
	}
	return nil
}

// RecordError reports a container record that could not be loaded. The
// engine skips such a record (its files are left in place for inspection)
// and goes on with the others.
type RecordError struct {
	Path string
	Err  error
}

// Error names the file and what was wrong with it.
func (e *RecordError) Error() string {
	return fmt.Sprintf("container record %s skipped: %v: repair or remove the file", e.Path, e.Err)
}

// Unwrap returns the cause.
func (e *RecordError) Unwrap() error { return e.Err }

// load reads every record. Stray temporary files (a crash between write and
// rename) are removed; bad records are reported as *RecordError and skipped.
func (s *store) load() ([]*Container, []error, error) {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create %s: %w", s.dir, err)
	}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", s.dir, err)
	}
	var out []*Container
	var bad []error
	for _, ent := range ents {
		dir := filepath.Join(s.dir, ent.Name())
		if !ent.IsDir() || validateID(ent.Name()) != nil {
			bad = append(bad, &RecordError{Path: dir, Err: errors.New("not a container directory (want a directory named by a 64-hex-character id)")})
			continue
		}
		if tmps, _ := filepath.Glob(filepath.Join(dir, tmpPrefix+"*")); len(tmps) > 0 {
			for _, t := range tmps {
				os.Remove(t)
			}
		}
		path := filepath.Join(dir, recordFile)
		data, err := os.ReadFile(path)
		if err != nil {
			bad = append(bad, &RecordError{Path: path, Err: err})
			continue
		}
		c, err := decodeRecord(data)
		if err != nil {
			bad = append(bad, &RecordError{Path: path, Err: err})
			continue
		}
		if c.ID != ent.Name() {
			bad = append(bad, &RecordError{Path: path, Err: fmt.Errorf("record is for container %q, not %q", c.ID, ent.Name())})
			continue
		}
		out = append(out, c)
	}
	return out, bad, nil
}

// decodeRecord reads any known version of the record format.
func decodeRecord(data []byte) (*Container, error) {
	var env recordEnvelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("corrupt record: %w", err)
	}
	switch {
	case env.Version == 1:
		var c Container
		if err := json.Unmarshal(env.Container, &c); err != nil {
			return nil, fmt.Errorf("corrupt record (version 1): %w", err)
		}
		if err := validateID(c.ID); err != nil {
			return nil, fmt.Errorf("corrupt record: %w", err)
		}
		if !knownState(c.State) {
			return nil, fmt.Errorf("corrupt record: unknown state %q", c.State)
		}
		return &c, nil
	case env.Version > recordVersion:
		return nil, fmt.Errorf("record format version %d is newer than this engine's (%d): run a newer engine", env.Version, recordVersion)
	default:
		return nil, fmt.Errorf("corrupt record: no or invalid format version %d", env.Version)
	}
}
