package integration

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	runcopts "github.com/containerd/containerd/api/types/runc/options"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/tendhq/tend/libcontainerd"
)

// BenchmarkCheckpoint: checkpoint a running `sleep` into a directory with
// exit, delete the task, restore it from the directory; raw containerd
// client against libcontainerd, alternating in each iteration. It reports
// the checkpoint call (until the dump is written) and the restore (NewTask
// and Start until the task runs) in ms/op each.
func BenchmarkCheckpoint(b *testing.B) {
	needCRIU(b)
	ctx := testCtx(b)
	rc := rawClient(b)
	w := newExitWaiter()
	c := newClient(b, w)
	base := fmt.Sprintf("%s-%d", testID(b), b.N)
	dirs := b.TempDir()

	rawID, tendID := base+"-raw", base+"-tend"
	ctr, err := rc.NewContainer(ctx, rawID, containerd.WithNewSpec(oci.WithDefaultPathEnv, oci.WithProcessArgs("sleep", "100000"), oci.WithRootFSPath(testEnv.Rootfs), oci.WithRootFSReadonly()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cleanupContainer(b, rawID) })
	task, err := ctr.NewTask(ctx, rawIO(rawID))
	if err != nil {
		b.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		b.Fatal(err)
	}
	if err := c.Create(ctx, tendID, rootfsSpec(b, tendID, "sleep", "100000")); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cleanupContainer(b, tendID) })
	if _, err := c.Start(ctx, tendID); err != nil {
		b.Fatal(err)
	}
	withExit := func(r *containerd.CheckpointTaskInfo) error {
		r.Options.(*runcopts.CheckpointOptions).Exit = true
		return nil
	}

	var rawCP, rawRestore, tendCP, tendRestore time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Raw containerd.
		dir := filepath.Join(dirs, fmt.Sprintf("raw-%d", i))
		exitCh, err := task.Wait(ctx)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if _, err := task.Checkpoint(ctx, containerd.WithCheckpointImagePath(dir), withExit); err != nil {
			b.Fatalf("raw checkpoint: %v", err)
		}
		rawCP += time.Since(t0)
		<-exitCh
		if _, err := task.Delete(ctx); err != nil {
			b.Fatal(err)
		}
		t0 = time.Now()
		if task, err = ctr.NewTask(ctx, rawIO(rawID), containerd.WithRestoreImagePath(dir)); err != nil {
			b.Fatalf("raw restore: %v", err)
		}
		if err := task.Start(ctx); err != nil {
			b.Fatalf("raw restore: %v", err)
		}
		rawRestore += time.Since(t0)

		// libcontainerd.
		dir = filepath.Join(dirs, fmt.Sprintf("tend-%d", i))
		t0 = time.Now()
		if err := c.CreateCheckpoint(ctx, tendID, dir, libcontainerd.WithCheckpointExit()); err != nil {
			b.Fatalf("tend checkpoint: %v", err)
		}
		tendCP += time.Since(t0)
		w.wait(b, tendID, tendID)
		if _, _, err := c.DeleteTask(ctx, tendID); err != nil {
			b.Fatal(err)
		}
		t0 = time.Now()
		if _, err := c.Start(ctx, tendID, libcontainerd.WithCheckpointDir(dir)); err != nil {
			b.Fatalf("tend restore: %v", err)
		}
		tendRestore += time.Since(t0)
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) / 1e6 }
	b.ReportMetric(ms(rawCP), "raw-checkpoint-ms/op")
	b.ReportMetric(ms(tendCP), "tend-checkpoint-ms/op")
	b.ReportMetric(ms(rawRestore), "raw-restore-ms/op")
	b.ReportMetric(ms(tendRestore), "tend-restore-ms/op")
}
