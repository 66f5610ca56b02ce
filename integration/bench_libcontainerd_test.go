package integration

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/tendhq/tend/libcontainerd"
)

// exitWaiter is a Backend that hands each exit to whoever waits for it.
type exitWaiter struct {
	mu      sync.Mutex
	waiting map[string]chan libcontainerd.EventInfo
}

func newExitWaiter() *exitWaiter {
	return &exitWaiter{waiting: map[string]chan libcontainerd.EventInfo{}}
}

func (w *exitWaiter) ch(id, process string) chan libcontainerd.EventInfo {
	w.mu.Lock()
	defer w.mu.Unlock()
	k := id + "/" + process
	ch := w.waiting[k]
	if ch == nil {
		ch = make(chan libcontainerd.EventInfo, 1)
		w.waiting[k] = ch
	}
	return ch
}

func (w *exitWaiter) ProcessEvent(_ context.Context, id string, et libcontainerd.EventType, info libcontainerd.EventInfo) error {
	if et == libcontainerd.EventExit {
		w.ch(id, info.ProcessID) <- info
	}
	return nil
}

func (w *exitWaiter) wait(b *testing.B, id, process string) libcontainerd.EventInfo {
	ch := w.ch(id, process)
	select {
	case info := <-ch:
		w.mu.Lock()
		delete(w.waiting, id+"/"+process)
		w.mu.Unlock()
		return info
	case <-time.After(30 * time.Second):
		b.Fatalf("no exit for %s/%s within 30s", id, process)
		return libcontainerd.EventInfo{}
	}
}

// pair times a raw containerd operation and the same through libcontainerd,
// alternating them so that drift of the machine hits both alike, and reports
// both and their ratio.
func pair(b *testing.B, raw, tend func(i int)) {
	var rawTotal, tendTotal time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		raw(i)
		t1 := time.Now()
		tend(i)
		tendTotal += time.Since(t1)
		rawTotal += t1.Sub(t0)
	}
	b.StopTimer()
	rawNs := float64(rawTotal.Nanoseconds()) / float64(b.N)
	tendNs := float64(tendTotal.Nanoseconds()) / float64(b.N)
	b.ReportMetric(rawNs/1e6, "raw-ms/op")
	b.ReportMetric(tendNs/1e6, "tend-ms/op")
	b.ReportMetric(tendNs/rawNs, "tend/raw")
}

func rawIO(id string) cio.Creator {
	return cio.NewCreator(cio.WithFIFODir(testEnv.FIFORoot+"/raw-"+id), cio.WithStreams(nil, io.Discard, io.Discard))
}

// benchConfinements are the two ways the benchmarks run containers, both
// sides alike: under containerd's default seccomp profile (what every
// tend container gets, as Docker's do) and without a filter, to show what
// seccomp costs.
var benchConfinements = []struct {
	name string
	opts []oci.SpecOpts
}{
	{"seccomp=default", []oci.SpecOpts{seccomp.WithDefaultProfile()}},
	{"seccomp=unconfined", nil},
}

// benchSpec is rootfsSpec with confinement opts.
func benchSpec(b *testing.B, id string, confine []oci.SpecOpts, args ...string) *specs.Spec {
	s := rootfsSpec(b, id, args...)
	if err := oci.ApplyOpts(testCtx(b), nil, &containers.Container{ID: id}, s, confine...); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkLifecycle: create, start, wait for the exit of `true`, delete
// task and container; raw containerd client against libcontainerd, both
// with containerd's default seccomp profile, then both without.
func BenchmarkLifecycle(b *testing.B) {
	for _, cf := range benchConfinements {
		b.Run(cf.name, func(b *testing.B) { benchLifecycle(b, cf.opts) })
	}
}

func benchLifecycle(b *testing.B, confine []oci.SpecOpts) {
	ctx := testCtx(b)
	rc := rawClient(b)
	w := newExitWaiter()
	c := newClient(b, w)
	base := fmt.Sprintf("%s-%d", testID(b), b.N)
	pair(b, func(i int) {
		id := fmt.Sprintf("%s-raw-%d", base, i)
		ctr, err := rc.NewContainer(ctx, id, containerd.WithNewSpec(append([]oci.SpecOpts{oci.WithDefaultPathEnv, oci.WithProcessArgs("true"), oci.WithRootFSPath(testEnv.Rootfs), oci.WithRootFSReadonly()}, confine...)...))
		if err != nil {
			b.Fatal(err)
		}
		task, err := ctr.NewTask(ctx, rawIO(id))
		if err != nil {
			b.Fatal(err)
		}
		exitCh, err := task.Wait(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := task.Start(ctx); err != nil {
			b.Fatal(err)
		}
		<-exitCh
		if _, err := task.Delete(ctx); err != nil {
			b.Fatal(err)
		}
		if err := ctr.Delete(ctx); err != nil {
			b.Fatal(err)
		}
	}, func(i int) {
		id := fmt.Sprintf("%s-tend-%d", base, i)
		if err := c.Create(ctx, id, benchSpec(b, id, confine, "true")); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Start(ctx, id); err != nil {
			b.Fatal(err)
		}
		w.wait(b, id, id)
		if _, _, err := c.DeleteTask(ctx, id); err != nil {
			b.Fatal(err)
		}
		if err := c.Delete(ctx, id); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkExec: exec `true` in a running container and wait for its exit;
// raw containerd client against libcontainerd in the same container, under
// containerd's default seccomp profile (runc applies the container's filter
// to every exec), then without.
func BenchmarkExec(b *testing.B) {
	for _, cf := range benchConfinements {
		b.Run(cf.name, func(b *testing.B) { benchExec(b, cf.opts) })
	}
}

func benchExec(b *testing.B, confine []oci.SpecOpts) {
	ctx := testCtx(b)
	rc := rawClient(b)
	w := newExitWaiter()
	c := newClient(b, w)
	id := fmt.Sprintf("%s-%d", testID(b), b.N)
	if err := c.Create(ctx, id, benchSpec(b, id, confine, "sleep", "100000")); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cleanupContainer(b, id) })
	if _, err := c.Start(ctx, id); err != nil {
		b.Fatal(err)
	}
	ctr, err := rc.LoadContainer(ctx, id)
	if err != nil {
		b.Fatal(err)
	}
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	proc := func() *specs.Process {
		return &specs.Process{Args: []string{"true"}, Cwd: "/", Env: []string{"PATH=/bin"}}
	}
	pair(b, func(i int) {
		execID := fmt.Sprintf("raw-%d", i)
		p, err := task.Exec(ctx, execID, proc(), rawIO(execID))
		if err != nil {
			b.Fatal(err)
		}
		exitCh, err := p.Wait(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Start(ctx); err != nil {
			b.Fatal(err)
		}
		<-exitCh
		if _, err := p.Delete(ctx); err != nil {
			b.Fatal(err)
		}
	}, func(i int) {
		execID := fmt.Sprintf("tend-%d", i)
		if _, err := c.Exec(ctx, id, execID, proc()); err != nil {
			b.Fatal(err)
		}
		w.wait(b, id, execID)
	})
}
