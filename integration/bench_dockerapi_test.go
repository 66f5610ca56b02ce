package integration

import (
	"os"
	"testing"
	"time"
)

// BenchmarkDockerCLIRun times `docker run --rm busybox true` through the
// docker CLI against the engine's Docker API and `engine run --rm busybox
// true` through tend's own CLI against the same daemon, alternating the two
// in every iteration so that the machine's drift hits both alike. Both are
// a CLI process, a create, an attach, a wait, a start and a removal; the
// ratio is what tend's Docker API costs over its own. The dockerd column
// is BenchmarkDockerCLIRunDockerd's.
func BenchmarkDockerCLIRun(b *testing.B) {
	bins := dockerCLIs(b)
	root, err := os.MkdirTemp(testEnv.Root, "dbench-")
	if err != nil {
		b.Fatal(err)
	}
	d := startEngine(b, root, testEnv.Namespace+"-dbench")
	b.Cleanup(func() { cleanupEngine(b, d) })
	c := newDockerCLI(b, bins[len(bins)-1], d.dockerSocket())
	d.must(b, "image", "import", engineImage(b))
	var docker, tend time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if out, errs, code := c.run(b, "", "run", "--rm", "busybox", "true"); code != 0 {
			b.Fatalf("docker run: exit %d: %s %s", code, out, errs)
		}
		docker += time.Since(start)
		start = time.Now()
		d.must(b, "run", "--rm", "busybox", "true")
		tend += time.Since(start)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(docker.Milliseconds())/n, "docker-cli-ms/run")
	b.ReportMetric(float64(tend.Milliseconds())/n, "engine-cli-ms/run")
	b.ReportMetric(float64(docker)/float64(tend), "docker/engine")
}
