package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/tendhq/tend/internal/testutil"
)

// TestSmokeRawClient runs `echo hi` with the raw containerd client, from the
// imported image and from the plain rootfs: the harness works end to end.
func TestSmokeRawClient(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts func(c *client.Client, id string) ([]client.NewContainerOpts, error)
	}{
		{"image", func(c *client.Client, id string) ([]client.NewContainerOpts, error) {
			img, err := c.GetImage(testCtx(t), testEnv.ImageRef)
			if err != nil {
				return nil, err
			}
			return []client.NewContainerOpts{
				client.WithImage(img),
				client.WithSnapshotter(snapshotter),
				client.WithNewSnapshot(id+"-snap", img),
				client.WithNewSpec(oci.WithImageConfig(img), oci.WithDefaultPathEnv, oci.WithProcessArgs("echo", "hi")),
			}, nil
		}},
		{"rootfs", func(c *client.Client, id string) ([]client.NewContainerOpts, error) {
			return []client.NewContainerOpts{
				client.WithNewSpec(oci.WithRootFSPath(testEnv.Rootfs), oci.WithRootFSReadonly(),
					oci.WithDefaultPathEnv, oci.WithProcessArgs("echo", "hi")),
			}, nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := rawClient(t)
			ctx := testCtx(t)
			id := testID(t)
			t.Cleanup(func() { cleanupContainer(t, id) })
			opts, err := tc.opts(c, id)
			if err != nil {
				t.Fatal(err)
			}
			ctr, err := c.NewContainer(ctx, id, opts...)
			if err != nil {
				t.Fatalf("create container: %v", err)
			}
			fifoDir := filepath.Join(testEnv.FIFORoot, id)
			if err := os.MkdirAll(fifoDir, 0o700); err != nil {
				t.Fatal(err)
			}
			var out testutil.Buffer
			task, err := ctr.NewTask(ctx, cio.NewCreator(cio.WithFIFODir(fifoDir), cio.WithStreams(nil, &out, &out)))
			if err != nil {
				t.Fatalf("create task: %v", err)
			}
			statusC, err := task.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := task.Start(ctx); err != nil {
				t.Fatalf("start task: %v", err)
			}
			select {
			case st := <-statusC:
				code, _, err := st.Result()
				if err != nil || code != 0 {
					t.Fatalf("exit %d, %v; output %q", code, err, out.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatal("echo hi did not exit within 30s")
			}
			// Delete closes the IO after its copy goroutines drained the FIFOs.
			if _, err := task.Delete(ctx); err != nil {
				t.Fatalf("delete task: %v", err)
			}
			if got := strings.TrimSpace(out.String()); got != "hi" {
				t.Fatalf("output %q, want %q", got, "hi")
			}
		})
	}
}
