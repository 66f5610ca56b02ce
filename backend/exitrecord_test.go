package backend

import (
	"testing"
	"time"

	"github.com/tendhq/tend/healthcheck/initprobe"
	"github.com/tendhq/tend/libcontainerd"
)

func TestWithExitRecord(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 3, 0, time.UTC)
	rec := &initprobe.ExitRecord{Code: 42, ExitedAt: at}
	lost := libcontainerd.EventInfo{ExitCode: libcontainerd.ExitCodeUnknown, ExitedAt: at.Add(time.Hour), Reason: "lost"}
	real255 := libcontainerd.EventInfo{ExitCode: 255, ExitedAt: at}
	known := libcontainerd.EventInfo{ExitCode: 3, ExitedAt: at}
	for _, tc := range []struct {
		name string
		info libcontainerd.EventInfo
		rec  *initprobe.ExitRecord
		want libcontainerd.EventInfo
	}{
		{"a lost status is taken from the record", lost, rec, libcontainerd.EventInfo{ExitCode: 42, ExitedAt: at}},
		{"a lost status without a record stays lost", lost, nil, lost},
		{"a real 255 is kept", real255, rec, real255},
		{"a known status is kept", known, rec, known},
	} {
		if got := withExitRecord(tc.info, tc.rec); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
