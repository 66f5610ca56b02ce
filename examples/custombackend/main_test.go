package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/libcontainerd"
)

func TestPrinterDeliversInitExit(t *testing.T) {
	var out bytes.Buffer
	p := newPrinter(&out)
	exited := p.exitOf("c1")
	ctx := context.Background()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, ev := range []struct {
		typ  libcontainerd.EventType
		info libcontainerd.EventInfo
	}{
		{libcontainerd.EventStart, libcontainerd.EventInfo{ContainerID: "c1", ProcessID: "c1", Pid: 42}},
		{libcontainerd.EventExit, libcontainerd.EventInfo{ContainerID: "c1", ProcessID: "exec-1", Pid: 43, ExitCode: 1, ExitedAt: at}},
		{libcontainerd.EventExit, libcontainerd.EventInfo{ContainerID: "c1", ProcessID: "c1", Pid: 42, ExitCode: 3, ExitedAt: at}},
	} {
		if err := p.ProcessEvent(ctx, "c1", ev.typ, ev.info); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case info := <-exited:
		if info.ExitCode != 3 || info.Pid != 42 {
			t.Fatalf("delivered %+v, want the init exit (pid 42, status 3)", info)
		}
	default:
		t.Fatal("init exit not delivered")
	}
	want := []string{
		"c1: start (process c1, pid 42)",
		"c1: process exec-1 (pid 43) exited with status 1 at 2026-01-02T03:04:05Z",
		"c1: process c1 (pid 42) exited with status 3 at 2026-01-02T03:04:05Z",
	}
	if got := strings.Split(strings.TrimSpace(out.String()), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("printed\n%s\nwant\n%s", out.String(), strings.Join(want, "\n"))
	}
}
