package libcontainerd

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestUserCapabilities(t *testing.T) {
	caps := []string{"CAP_CHOWN", "CAP_KILL"}
	for _, tc := range []struct {
		uid  uint32
		want []string
	}{
		{0, caps},
		{1000, nil},
	} {
		p := &specs.Process{User: specs.User{UID: tc.uid}, Capabilities: &specs.LinuxCapabilities{Bounding: caps, Ambient: caps, Inheritable: caps}}
		userCapabilities(p)
		c := p.Capabilities
		if !reflect.DeepEqual(c.Bounding, caps) || !reflect.DeepEqual(c.Effective, tc.want) || !reflect.DeepEqual(c.Permitted, tc.want) {
			t.Errorf("uid %d: got bounding %q effective %q permitted %q, want bounding %q and %q", tc.uid, c.Bounding, c.Effective, c.Permitted, caps, tc.want)
		}
		if tc.uid != 0 && (c.Ambient != nil || c.Inheritable != nil) {
			t.Errorf("uid %d keeps ambient %q inheritable %q", tc.uid, c.Ambient, c.Inheritable)
		}
	}
}

// countingBackend counts exits per process.
type countingBackend struct {
	mu    sync.Mutex
	exits map[string][]EventInfo
}

func (b *countingBackend) ProcessEvent(_ context.Context, id string, et EventType, info EventInfo) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if et == EventExit {
		b.exits[info.ProcessID] = append(b.exits[info.ProcessID], info)
	}
	return nil
}

// TestDeliverExitExactlyOnce drives the exactly-once bookkeeping with the
// reports containerd really produces: the event, a re-published event after
// a restart, a reconcile waiter, DeleteTask, and an exec whose exit races its
// Start.
func TestDeliverExitExactlyOnce(t *testing.T) {
	b := &countingBackend{exits: map[string][]EventInfo{}}
	c := &client{backend: b, log: log.L, containers: map[string]*container{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	defer c.cancel()
	at := time.Unix(100, 0)
	c.containers["c1"] = &container{procs: map[string]*process{
		"c1":   {id: "c1", pid: 10, live: true},
		"exec": {id: "exec", pid: 0, live: true}, // exit arrives before Start returned its pid
	}, oomSeen: true}

	c.deliverExit("c1", "c1", 10, 137, at, "")          // the event
	c.deliverExit("c1", "c1", 10, 137, at, "")          // re-published after a containerd restart
	c.deliverExit("c1", "c1", 10, 255, time.Now(), "x") // a reconcile that came late
	c.deliverExit("c1", "c1", 11, 0, at, "")            // another pid: not this process
	c.deliverExit("c1", "exec", 42, 3, at, "")          // exec exit with its pid not yet recorded
	c.deliverExit("c1", "exec", 42, 3, at, "")          // and again
	c.deliverExit("unknown", "unknown", 1, 0, at, "")   // a container this client does not manage
	c.queue.Close()

	if got := b.exits["c1"]; len(got) != 1 || got[0].ExitCode != 137 || !got[0].OOMKilled || got[0].Pid != 10 {
		t.Fatalf("init exits %+v: want exactly one, code 137, OOMKilled", got)
	}
	if got := b.exits["exec"]; len(got) != 1 || got[0].ExitCode != 3 {
		t.Fatalf("exec exits %+v: want exactly one with code 3", got)
	}
	if len(b.exits["unknown"]) != 0 {
		t.Fatal("delivered an exit of an unmanaged container")
	}
	if _, ok := c.containers["c1"].procs["exec"]; ok {
		t.Fatal("exited exec process is still tracked")
	}
}

// fakeIO counts the calls containerd's client makes on a task's IO; it
// embeds the interface and overrides what procIO passes on.
type fakeIO struct {
	cio.IO
	cancels, closes int
}

func (f *fakeIO) Cancel()      { f.cancels++ }
func (f *fakeIO) Close() error { f.closes++; return nil }

// TestProcIOHold: while a Start call is in flight, the Cancel and Close
// containerd's client makes when the call fails wait for its outcome: done
// when the start failed, dropped when the task started after all.
func TestProcIOHold(t *testing.T) {
	for _, tc := range []struct {
		failed bool
		closes int // done by release
	}{{failed: true, closes: 1}, {failed: false, closes: 0}} {
		f := &fakeIO{}
		p := &procIO{IO: f}
		p.hold()
		p.Cancel()
		p.Close()
		if f.cancels != 0 || f.closes != 0 {
			t.Fatalf("held IO: %d cancels, %d closes before the outcome", f.cancels, f.closes)
		}
		p.release(tc.failed)
		if f.closes != tc.closes {
			t.Errorf("start failed %v: release closed %d times, want %d", tc.failed, f.closes, tc.closes)
		}
		p.Close() // after release, as Delete does
		if f.closes != tc.closes+1 {
			t.Errorf("start failed %v: Close after release did not close", tc.failed)
		}
	}
}

// TestOptionTypes pins which call each option configures: an option a call
// does not use must not compile there, so it is not silently ignored.
func TestOptionTypes(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		opt                  any
		start, exec, restore bool
	}{
		{"WithStdin", WithStdin(true), true, true, false},
		{"WithTerminal", WithTerminal(true), false, true, false},
		{"WithStdio", WithStdio(nil), true, true, true},
		{"WithCheckpointDir", WithCheckpointDir("d"), true, false, false},
		{"WithCheckpointImage", WithCheckpointImage("i"), true, false, false},
		{"WithCheckpointWorkDir", WithCheckpointWorkDir("w"), true, false, false},
		{"WithTaskOpts", WithTaskOpts(), true, false, false},
	} {
		_, start := tc.opt.(StartOption)
		_, exec := tc.opt.(ExecOption)
		_, restore := tc.opt.(RestoreOption)
		if start != tc.start || exec != tc.exec || restore != tc.restore {
			t.Errorf("%s: configures Start %v, Exec %v, Restore %v; want %v, %v, %v", tc.name, start, exec, restore, tc.start, tc.exec, tc.restore)
		}
	}
}
