package integration

import (
	"fmt"
	"sync"
	"syscall"
	"testing"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/tendhq/tend/backend"
)

// parallelContainers is how many containers BenchmarkBackendParallelStartStop
// starts and stops at once.
const parallelContainers = 50

// BenchmarkBackendParallelStartStop: 50 containers started and then killed
// (SIGKILL) in parallel, one goroutine per container, until their exit is
// handled. tend: the engine's Start, Kill and Wait, where the work of one
// container must not wait for the others'; raw: the containerd client doing
// new task, wait, start, kill, exit, delete task for 50 containers.
func BenchmarkBackendParallelStartStop(b *testing.B) {
	env := newEngineEnv(b, nil)
	ctx := testCtx(b)
	rc := rawClient(b)
	base := fmt.Sprintf("%s-%d", testID(b), b.N)
	var raws []containerd.Container
	var tends []string
	for i := range parallelContainers {
		id := fmt.Sprintf("%s-raw-%d", base, i)
		ctr, err := rc.NewContainer(ctx, id, containerd.WithNewSpec(oci.WithDefaultPathEnv, oci.WithProcessArgs("sleep", "1000"),
			oci.WithRootFSPath(testEnv.Rootfs), oci.WithRootFSReadonly()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cleanupContainer(b, id) })
		raws = append(raws, ctr)
		c := env.create(backend.CreateOptions{Cmd: []string{"sleep", "1000"}})
		tends = append(tends, c.ID)
	}
	parallel := func(f func(k int) error) {
		var wg sync.WaitGroup
		errs := make([]error, parallelContainers)
		for k := range parallelContainers {
			wg.Go(func() { errs[k] = f(k) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	pair(b, func(i int) {
		parallel(func(k int) error {
			task, err := raws[k].NewTask(ctx, rawIO(fmt.Sprintf("%s-%d-%d", raws[k].ID(), i, k)))
			if err != nil {
				return err
			}
			exitCh, err := task.Wait(ctx)
			if err != nil {
				return err
			}
			if err := task.Start(ctx); err != nil {
				return err
			}
			if err := task.Kill(ctx, syscall.SIGKILL); err != nil {
				return err
			}
			<-exitCh
			_, err = task.Delete(ctx)
			return err
		})
	}, func(i int) {
		parallel(func(k int) error {
			if err := env.e.Start(ctx, tends[k]); err != nil {
				return err
			}
			if err := env.e.Kill(ctx, tends[k], syscall.SIGKILL); err != nil {
				return err
			}
			_, err := env.e.Wait(ctx, tends[k], backend.WaitNotRunning)
			return err
		})
	})
}
