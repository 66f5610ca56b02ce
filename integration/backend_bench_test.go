package integration

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/tendhq/tend/backend"
)

// BenchmarkBackendRestart: from the SIGKILL of a container's process to its
// replacement task running. tend: the always policy with a zero backoff
// (exit event, task delete, record, new task, start, record); raw: the
// containerd client doing wait, delete task, new task, start.
func BenchmarkBackendRestart(b *testing.B) {
	env := newEngineEnv(b, func(c *backend.Config) {
		c.Backoff = backend.Backoff{Initial: time.Nanosecond, Max: time.Nanosecond, Multiplier: 1}
	})
	ctx := testCtx(b)
	rc := rawClient(b)
	id := fmt.Sprintf("%s-raw-%d", testID(b), b.N)
	ctr, err := rc.NewContainer(ctx, id, containerd.WithNewSpec(oci.WithDefaultPathEnv, oci.WithProcessArgs("sleep", "1000"),
		oci.WithRootFSPath(testEnv.Rootfs), oci.WithRootFSReadonly()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cleanupContainer(b, id) })
	task, err := ctr.NewTask(ctx, rawIO(id+"-0"))
	if err != nil {
		b.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		b.Fatal(err)
	}
	c := env.run(backend.CreateOptions{Cmd: []string{"sleep", "1000"}, Restart: backend.RestartPolicy{Name: "always"}})

	pair(b, func(i int) {
		exitCh, err := task.Wait(ctx)
		if err != nil {
			b.Fatal(err)
		}
		syscall.Kill(int(task.Pid()), syscall.SIGKILL)
		<-exitCh
		if _, err := task.Delete(ctx); err != nil {
			b.Fatal(err)
		}
		if task, err = ctr.NewTask(ctx, rawIO(fmt.Sprintf("%s-%d", id, i+1))); err != nil {
			b.Fatal(err)
		}
		if err := task.Start(ctx); err != nil {
			b.Fatal(err)
		}
	}, func(i int) {
		before := len(env.evs.of(c.ID, "start"))
		syscall.Kill(int(env.inspect(c.ID).Pid), syscall.SIGKILL)
		deadline := time.Now().Add(30 * time.Second)
		for len(env.evs.of(c.ID, "start")) == before {
			if time.Now().After(deadline) {
				b.Fatalf("no restart after 30s")
			}
			env.evs.waitChange(time.Second)
		}
	})
}
