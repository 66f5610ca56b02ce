package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
)

// BenchmarkConcurrentStart creates and starts TEND_BENCH_START_CONTAINERS
// (default 20; 200 for the README's figures) idle containers all at once, one
// goroutine each, and reports the time until every one runs: through the
// engine daemon's HTTP API (POST /v1/containers, then .../start, over its
// unix socket, without networking) and through the raw containerd client
// (new container, new task, start, with the spec the engine gave a
// container of the same options) with the same concurrency, in the same
// run, raw first; the raw containers are removed before the engine's turn.
// tend/raw is their ratio; raw-client-cpu-s and engine-cpu-s are the CPU
// this process's client and the engine daemon spent.
//
//	TEND_BENCH_START_CONTAINERS=200 go test -run XXX -bench ConcurrentStart -benchtime 1x ./integration/
func BenchmarkConcurrentStart(b *testing.B) {
	n := envCount(b, "TEND_BENCH_START_CONTAINERS", 20)
	ctx := testCtx(b)
	root, err := os.MkdirTemp(testEnv.Root, "eng-start-")
	if err != nil {
		b.Fatal(err)
	}
	d := startEngine(b, root, testEnv.Namespace+"-start", "--bridge", "none", "--log-level", "info")
	b.Cleanup(func() { cleanupEngine(b, d) })
	a := newEngineAPI(d, n)
	opts := map[string]any{"rootfs": testEnv.Rootfs, "cmd": []string{"sleep", "1000000"}}
	specFor := engineSpec(b, a, d, opts)

	// Raw containerd client, with the engine's spec.
	rc := rawClient(b)
	base := fmt.Sprintf("%s-%d", testID(b), b.N)
	self0 := selfCPU()
	raw := allAtOnce(b, n, func(i int) error {
		id := fmt.Sprintf("%s-%d", base, i)
		b.Cleanup(func() { cleanupContainer(b, id) })
		ctr, err := rc.NewContainer(ctx, id, containerd.WithSpec(specFor(id)))
		if err != nil {
			return err
		}
		task, err := ctr.NewTask(ctx, rawIO(id))
		if err != nil {
			return err
		}
		return task.Start(ctx)
	})
	rawCPU := selfCPU() - self0
	// The raw containers go before the engine's start: its run must not
	// share the machine with n more containers than the raw one did.
	// Four at a time: sixteen deletes at once ran past the harness's 30 s
	// per container at load 200.
	parallel(4, n, func(i int) { cleanupContainer(b, fmt.Sprintf("%s-%d", base, i)) })

	// The engine's API.
	pid := d.cmd.Process.Pid
	ticks0 := procTicks(pid)
	ids := make([]string, n)
	tend := allAtOnce(b, n, func(i int) error {
		id, err := a.create(ctx, opts)
		if err != nil {
			return err
		}
		ids[i] = id
		_, err = a.do(ctx, http.MethodPost, "/containers/"+id+"/start", nil, http.StatusNoContent)
		return err
	})
	engineCPU := time.Duration(procTicks(pid)-ticks0) * (time.Second / clockTicks)
	// Also logged: the clean-up of many containers may outlast the run.
	b.Logf("%d containers created and started at once: raw %v (client CPU %v), tend %v (daemon CPU %v), tend/raw %.2f",
		n, raw, rawCPU.Round(time.Millisecond), tend, engineCPU.Round(time.Millisecond), float64(tend)/float64(raw))
	b.ReportMetric(raw.Seconds(), "raw-s")
	b.ReportMetric(tend.Seconds(), "tend-s")
	b.ReportMetric(float64(tend)/float64(raw), "tend/raw")
	b.ReportMetric(rawCPU.Seconds(), "raw-client-cpu-s")
	b.ReportMetric(engineCPU.Seconds(), "engine-cpu-s")
	parallel(16, n, func(i int) {
		if ids[i] != "" {
			_, _ = a.do(context.Background(), http.MethodDelete, "/containers/"+ids[i]+"?force=1", nil, http.StatusNoContent)
		}
	})
}

// allAtOnce runs f(0..n-1) in n goroutines released together and returns
// the time until the last returned; it fails on any error.
func allAtOnce(b *testing.B, n int, f func(i int) error) time.Duration {
	errs := make([]error, n)
	var ready, done sync.WaitGroup
	gate := make(chan struct{})
	for i := range n {
		ready.Add(1)
		done.Go(func() {
			ready.Done()
			<-gate
			errs[i] = f(i)
		})
	}
	ready.Wait()
	start := time.Now()
	close(gate)
	done.Wait()
	took := time.Since(start)
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	return took
}
