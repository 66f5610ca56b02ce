package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
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
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", d.sock)
		},
		MaxIdleConnsPerHost: n,
	}}
	post := func(path string, body any, want int) ([]byte, error) {
		var rd io.Reader
		if body != nil {
			j, err := json.Marshal(body)
			if err != nil {
				return nil, err
			}
			rd = bytes.NewReader(j)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://engine/v1"+path, rd)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != want {
			err = fmt.Errorf("POST %s: %s: %s", path, resp.Status, out)
		}
		return out, err
	}
	tend := allAtOnce(b, n, func(i int) error {
		out, err := post("/containers", map[string]any{"rootfs": testEnv.Rootfs, "cmd": []string{"sleep", "1000000"}}, http.StatusCreated)
		if err != nil {
			return err
		}
		var rec struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(out, &rec); err != nil || rec.ID == "" {
			return fmt.Errorf("create: no id in %s (%v)", out, err)
		}
		_, err = post("/containers/"+rec.ID+"/start", nil, http.StatusNoContent)
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
