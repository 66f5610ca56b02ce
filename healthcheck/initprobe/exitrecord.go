package initprobe

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// ExitRecordName is the name, in SocketDir, of the file in which tend-init
// records the command's exit.
const ExitRecordName = "exit.json"

// ExitRecord is the command's exit as tend-init saw it, written before
// tend-init exits. The engine reads it when containerd cannot give the exit
// status: containerd 1.7 and 2.x delete, when they start, a task whose
// process exited while they were down, and report its exit as 255.
type ExitRecord struct {
	// Code is the command's status: 128+n when signal n ended it.
	Code int `json:"code"`
	// ExitedAt is when tend-init reaped the command.
	ExitedAt time.Time `json:"exited_at"`
}

// WriteExitRecord writes rec to path atomically (a temporary file renamed
// over it), so a reader never sees half a record, and syncs it: the engine
// may read it after a host crash.
func WriteExitRecord(path string, rec ExitRecord) (retErr error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("exit record: %w", err)
	}
	defer func() {
		if retErr != nil {
			os.Remove(tmp.Name())
		}
	}()
	_, werr := tmp.Write(b)
	serr := tmp.Sync()
	if err := errors.Join(werr, serr, tmp.Close()); err != nil {
		return fmt.Errorf("exit record: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("exit record: %w", err)
	}
	return nil
}

// ReadExitRecord reads the record at path. A missing file is (nil, nil):
// the command has not exited, or not under a tend-init that records.
func ReadExitRecord(path string) (*ExitRecord, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read exit record: %w", err)
	}
	var rec ExitRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("exit record %s is corrupt: %w", path, err)
	}
	if rec.ExitedAt.IsZero() || rec.Code < 0 || rec.Code > 255 {
		return nil, fmt.Errorf("exit record %s is invalid: %+v", path, rec)
	}
	return &rec, nil
}
