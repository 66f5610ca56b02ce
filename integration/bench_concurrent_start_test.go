package integration

import (
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/oci"
)

// BenchmarkConcurrentStart creates and starts TEND_BENCH_START_CONTAINERS
// (default 20; issue 16 asks for 200) idle containers all at once, one
// goroutine each, and reports the time until every one runs: through the
// engine daemon's HTTP API (POST /v1/containers, then .../start, over its
// unix socket, without networking) and through the raw containerd client
// (new container, new task, start) with the same concurrency, in the same
// run, raw first; tend/raw is their ratio.
//
//	TEND_BENCH_START_CONTAINERS=200 go test -run XXX -bench ConcurrentStart -benchtime 1x ./integration/
func BenchmarkConcurrentStart(b *testing.B) {
	n := envCount(b, "TEND_BENCH_START_CONTAINERS", 20)
	ctx := testCtx(b)

	// Raw containerd client.
	rc := rawClient(b)
	base := fmt.Sprintf("%s-%d", testID(b), b.N)
	raw := allAtOnce(b, n, func(i int) error {
		id := fmt.Sprintf("%s-%d", base, i)
		b.Cleanup(func() { cleanupContainer(b, id) })
		ctr, err := rc.NewContainer(ctx, id, containerd.WithNewSpec(oci.WithDefaultPathEnv, oci.WithProcessArgs("sleep", "1000000"),
			oci.WithRootFSPath(testEnv.Rootfs), oci.WithRootFSReadonly()))
		if err != nil {
			return err
		}
		task, err := ctr.NewTask(ctx, rawIO(id))
		if err != nil {
			return err
		}
		return task.Start(ctx)
	})

	// The engine's API.
	root, err := os.MkdirTemp(testEnv.Root, "eng-start-")
	if err != nil {
		b.Fatal(err)
	}
	d := startEngine(b, root, testEnv.Namespace+"-start", "--bridge", "none")
	b.Cleanup(func() { cleanupEngine(b, d) })
	a := newEngineAPI(d, n)
	tend := allAtOnce(b, n, func(i int) error {
		id, err := a.create(ctx, map[string]any{"rootfs": testEnv.Rootfs, "cmd": []string{"sleep", "1000000"}})
		if err != nil {
			return err
		}
		_, err = a.do(ctx, http.MethodPost, "/containers/"+id+"/start", nil, http.StatusNoContent)
		return err
	})
	// Also logged: the clean-up of many containers may outlast the run.
	b.Logf("%d containers created and started at once: raw %v, tend %v, tend/raw %.2f", n, raw, tend, float64(tend)/float64(raw))
	b.ReportMetric(raw.Seconds(), "raw-s")
	b.ReportMetric(tend.Seconds(), "tend-s")
	b.ReportMetric(float64(tend)/float64(raw), "tend/raw")
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
