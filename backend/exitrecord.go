package backend

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/tendhq/tend/healthcheck/initprobe"
	"github.com/tendhq/tend/libcontainerd"
)

// exitRecord is the host path of the file in which a container's tend-init
// records the command's exit (initprobe.ExitRecord).
func (e *Engine) exitRecord(id string) string {
	return filepath.Join(e.store.containerDir(id), initSocketDir, initprobe.ExitRecordName)
}

// clearExitRecord removes the exit record before a start, so that a record
// found later is the exit of that start's run.
func (e *Engine) clearExitRecord(id string) {
	if err := os.Remove(e.exitRecord(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		e.log.WithError(err).WithField("container", id).Warn("remove the exit record of the previous run")
	}
}

// takeExitRecord reads and removes the exit record of the container's last
// run, if tend-init left one. It is removed before the exit is recorded, so
// that an engine that dies in between counts the exit once, not twice.
func (e *Engine) takeExitRecord(id string) *initprobe.ExitRecord {
	rec, err := initprobe.ReadExitRecord(e.exitRecord(id))
	if err != nil {
		e.log.WithError(err).WithField("container", id).Warn("ignoring the exit record left by tend-init")
	}
	e.clearExitRecord(id)
	return rec
}

// hasExitRecordAfter tells whether tend-init left an exit record that no
// exit has taken yet, of a run that ended after finished (the exit the
// container's record shows): the container's last run ended and its exit
// is not counted.
func (e *Engine) hasExitRecordAfter(id string, finished time.Time) bool {
	rec, _ := initprobe.ReadExitRecord(e.exitRecord(id))
	return rec != nil && rec.ExitedAt.After(finished)
}

// withExitRecord fills in an exit whose status containerd lost from the
// record tend-init left, when there is one.
func withExitRecord(info libcontainerd.EventInfo, rec *initprobe.ExitRecord) libcontainerd.EventInfo {
	if rec == nil || info.ExitCode != libcontainerd.ExitCodeUnknown || info.Reason == "" {
		return info
	}
	info.ExitCode, info.ExitedAt, info.Reason = uint32(rec.Code), rec.ExitedAt, ""
	return info
}
