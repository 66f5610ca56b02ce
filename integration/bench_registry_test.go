package integration

import (
	"context"
	"fmt"
	"sort"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	dockerconfig "github.com/containerd/containerd/v2/core/remotes/docker/config"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/tendhq/tend/backend"
)

// BenchmarkRegistryPull pulls a ~50 MB image of 5 layers of random,
// incompressible bytes (testimage.NewRandomImage), pushed to a registry
// the benchmark starts on 127.0.0.1, with the engine (PullImage:
// progress, shared flights, unpack) and with the raw containerd client
// (Pull with unpack) in the same run, each from an empty content store
// and a synced page cache, in alternating order (the first pull after a
// GC is not always the same one). It reports tend/raw from the totals and
// the median of the per-iteration ratios (the machine is shared: the
// median is the steadier figure), and the unpack time of the image (a
// fetch-only raw Pull, then Unpack, timed once).
func BenchmarkRegistryPull(b *testing.B) {
	reg := startRegistry(b, registryOpts{})
	img := pushRandomImage(b, reg.host, "bench/big", "v1", 5, 10<<20)
	ref := reg.host + "/bench/big:v1"
	b.SetBytes(img.Size())

	nsTend := freshNamespace(b, "bench-tend")
	env := newEngineEnv(b, func(c *backend.Config) { c.Namespace = nsTend })
	nsRaw := freshNamespace(b, "bench-raw")
	cc, err := containerd.New(testEnv.Address, containerd.WithDefaultNamespace(nsRaw))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	rawCtx := namespaces.WithNamespace(context.Background(), nsRaw)
	tendCtx := namespaces.WithNamespace(context.Background(), nsTend)
	resolver := func() containerd.RemoteOpt {
		return containerd.WithResolver(docker.NewResolver(docker.ResolverOptions{
			Hosts: dockerconfig.ConfigureHosts(rawCtx, dockerconfig.HostOptions{}),
		}))
	}
	// remove deletes the image and waits for containerd's GC, so that the
	// next pull downloads everything again (content is shared between
	// namespaces).
	remove := func(ctx context.Context) {
		if err := cc.ImageService().Delete(ctx, ref, images.SynchronousDelete()); err != nil {
			b.Fatalf("delete %s: %v", ref, err)
		}
	}
	events := 0
	// Each pull starts with the page cache clean: the writeback of the last
	// one's 100 MB (content and snapshot) is not charged to the next.
	pullTend := func() time.Duration {
		syscall.Sync()
		start := time.Now()
		if _, err := env.e.PullImage(tendCtx, ref, backend.PullOptions{}, func(backend.ProgressEvent) { events++ }); err != nil {
			b.Fatalf("PullImage: %v", err)
		}
		d := time.Since(start)
		remove(tendCtx)
		return d
	}
	pullRaw := func() time.Duration {
		syscall.Sync()
		start := time.Now()
		if _, err := cc.Pull(rawCtx, ref, resolver(), containerd.WithPullUnpack, containerd.WithPullSnapshotter("overlayfs")); err != nil {
			b.Fatalf("raw Pull: %v", err)
		}
		d := time.Since(start)
		remove(rawCtx)
		return d
	}
	// The unpack alone: a fetch-only Pull, then Unpack, once.
	syscall.Sync()
	fetched, err := cc.Pull(rawCtx, ref, resolver())
	if err != nil {
		b.Fatalf("raw fetch: %v", err)
	}
	syscall.Sync()
	start := time.Now()
	if err := fetched.Unpack(rawCtx, "overlayfs"); err != nil {
		b.Fatalf("unpack: %v", err)
	}
	unpackT := time.Since(start)
	remove(rawCtx)

	var tendT, rawT time.Duration
	var ratios []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var td, rd time.Duration
		if i%2 == 0 {
			td = pullTend()
			rd = pullRaw()
		} else {
			rd = pullRaw()
			td = pullTend()
		}
		tendT += td
		rawT += rd
		ratios = append(ratios, td.Seconds()/rd.Seconds())

		b.Logf("iteration %d: tend %v raw %v (%.3fx)", i, td.Round(time.Millisecond), rd.Round(time.Millisecond), ratios[i])
	}
	b.StopTimer()
	sort.Float64s(ratios)
	n := float64(b.N)
	b.ReportMetric(tendT.Seconds()*1000/n, "tend-ms/pull")
	b.ReportMetric(rawT.Seconds()*1000/n, "raw-ms/pull")
	b.ReportMetric(tendT.Seconds()/rawT.Seconds(), "tend/raw")
	b.ReportMetric(ratios[len(ratios)/2], "median-tend/raw")
	b.ReportMetric(float64(unpackT.Milliseconds()), "unpack-ms")
	b.ReportMetric(float64(events)/n, "events/pull")
	b.Log(fmt.Sprintf("%d MB image", img.Size()>>20))
}
