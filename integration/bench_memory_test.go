package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/healthcheck/initprobe"
)

// memStat is what smaps_rollup says of a process, in KiB.
type memStat struct {
	RSS, PSS, Private, Anon int64
}

func (m *memStat) add(o memStat) {
	m.RSS += o.RSS
	m.PSS += o.PSS
	m.Private += o.Private
	m.Anon += o.Anon
}

// readMem reads /proc/<pid>/smaps_rollup. PSS charges each page shared by n
// processes 1/n to each: the fair share of a process's memory.
func readMem(pid int) (memStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return memStat{}, err
	}
	var m memStat
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseInt(string(f[1]), 10, 64)
		if err != nil {
			continue
		}
		switch string(f[0]) {
		case "Rss:":
			m.RSS = v
		case "Pss:":
			m.PSS = v
		case "Private_Clean:", "Private_Dirty:":
			m.Private += v
		case "Anonymous:":
			m.Anon = v
		}
	}
	return m, nil
}

// envCount reads a positive count from the environment, def when unset.
func envCount(tb testing.TB, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		tb.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}

// BenchmarkInitMemory runs TEND_BENCH_INIT_CONTAINERS (default 4) idle
// containers under tend-init, sends TEND_BENCH_INIT_PROBES (default 200)
// `true` probes to each through its probe socket, as the engine does, and
// reports each tend-init's memory from /proc/<pid>/smaps_rollup, averaged:
// pss-KiB/init, private-KiB/init (what one more container costs: pages
// no other process shares), anon-KiB/init and rss-KiB/init, before the
// probes (-idle) and after. TEND_BENCH_INIT_PATH measures another build of
// tend-init the same way. The README's figure is for 3,000 probes:
//
//	TEND_BENCH_INIT_PROBES=3000 go test -run XXX -bench InitMemory -benchtime 1x ./integration/
func BenchmarkInitMemory(b *testing.B) {
	ctrs := envCount(b, "TEND_BENCH_INIT_CONTAINERS", 4)
	probes := envCount(b, "TEND_BENCH_INIT_PROBES", 200)
	env := newEngineEnv(b, func(cfg *backend.Config) {
		if p := os.Getenv("TEND_BENCH_INIT_PATH"); p != "" {
			cfg.InitPath = p
		}
	})
	on := true
	var pids []int
	var socks []string
	for i := range ctrs {
		c := env.run(backend.CreateOptions{Name: fmt.Sprintf("mem%d", i), Init: &on, Cmd: []string{"sleep", "1000000"}})
		pids = append(pids, int(c.Pid))
		socks = append(socks, filepath.Join(env.cfg.Root, "containers", c.ID, "init", initprobe.SocketName))
	}
	ctx := testCtx(b)
	probe := func(i int) {
		var p *initprobe.Probe
		var err error
		// The socket appears a little after the task starts.
		for try := 0; ; try++ {
			p, err = initprobe.Start(ctx, socks[i], []string{"true"}, nil, initprobe.StartOptions{ServerPid: pids[i]})
			if err == nil || try == 200 || ctx.Err() != nil {
				break
			}
			runtimeYield()
		}
		if err != nil {
			b.Errorf("probe %d: %v", i, err)
			return
		}
		if code, err := p.Wait(ctx); code != 0 || err != nil {
			b.Errorf("probe %d: exit %d, %v", i, code, err)
		}
	}
	for i := range ctrs {
		probe(i)
	}
	mean := func() memStat {
		var sum memStat
		for _, pid := range pids {
			m, err := readMem(pid)
			if err != nil {
				b.Fatalf("smaps_rollup of tend-init %d: %v", pid, err)
			}
			sum.add(m)
		}
		n := int64(len(pids))
		return memStat{sum.RSS / n, sum.PSS / n, sum.Private / n, sum.Anon / n}
	}
	idle := mean()

	b.ResetTimer()
	// One probe at a time per container, all containers at once.
	var wg sync.WaitGroup
	for i := range ctrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range probes - 1 {
				if b.Failed() || ctx.Err() != nil {
					return
				}
				probe(i)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	after := mean()
	b.ReportMetric(float64(idle.PSS), "pss-KiB/init-idle")
	b.ReportMetric(float64(after.PSS), "pss-KiB/init")
	b.ReportMetric(float64(after.Private), "private-KiB/init")
	b.ReportMetric(float64(after.Anon), "anon-KiB/init")
	b.ReportMetric(float64(after.RSS), "rss-KiB/init")
	b.ReportMetric(float64(probes), "probes/init")
}

// envCounts reads a comma-separated list of positive counts, def when unset.
func envCounts(tb testing.TB, name string, def []int) []int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			tb.Fatalf("%s=%q: want positive numbers separated by commas", name, s)
		}
		out = append(out, n)
	}
	return out
}

// shimMemory sums the memory of our shims and of the processes pids.
func shimMemory(tb testing.TB, pids []uint32) (shims int, shim, ctrs memStat) {
	tb.Helper()
	for _, s := range shimProcs() {
		m, err := readMem(s.pid)
		if err != nil {
			continue // a shim that just exited
		}
		shims++
		shim.add(m)
	}
	for _, pid := range pids {
		m, err := readMem(int(pid))
		if err != nil {
			tb.Fatalf("smaps_rollup of container process %d: %v", pid, err)
		}
		ctrs.add(m)
	}
	return shims, shim, ctrs
}

// BenchmarkShimMemory starts N idle containers (`sleep`, no tend-init) for
// each N of TEND_BENCH_SHIM_CONTAINERS (default 50; "50,200" for both) by
// the raw containerd client (raw/N: a shim each), by the engine with a
// shim each (tend/N, --containers-per-shim 1) and by the engine packing
// them into shared shims (tend-per-shim-K/N, for K in
// TEND_BENCH_SHIM_GROUPS, default 10,50), eight starts at a time, and
// reports from smaps_rollup, per container: shim-pss-KiB/ctr (the shims'
// PSS summed, divided by N), shim-rss-KiB/ctr, ctr-pss-KiB/ctr (the
// container's own process, the same in all), and shims (their count).
// Memory is not CPU time: the figures hold on a loaded machine.
//
//	TEND_BENCH_SHIM_CONTAINERS=50,200 go test -run XXX -bench ShimMemory -benchtime 1x ./integration/
func BenchmarkShimMemory(b *testing.B) {
	for _, n := range envCounts(b, "TEND_BENCH_SHIM_CONTAINERS", []int{50}) {
		b.Run(fmt.Sprintf("raw/%d", n), func(b *testing.B) { benchShimMemoryRaw(b, n) })
		b.Run(fmt.Sprintf("tend/%d", n), func(b *testing.B) { benchShimMemoryTend(b, n, 1) })
		for _, k := range envCounts(b, "TEND_BENCH_SHIM_GROUPS", []int{10, 50}) {
			b.Run(fmt.Sprintf("tend-per-shim-%d/%d", k, n), func(b *testing.B) { benchShimMemoryTend(b, n, k) })
		}
	}
}

// startsAtOnce bounds the concurrent starts of BenchmarkShimMemory.
const startsAtOnce = 8

// inParallel runs f(0..n-1), startsAtOnce at a time, and fails on the first
// error.
func inParallel(b *testing.B, n int, f func(i int) error) {
	sem := make(chan struct{}, startsAtOnce)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = f(i)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
}

func reportShimMemory(b *testing.B, n int, pids []uint32) {
	shims, shim, ctrs := shimMemory(b, pids)
	// Also logged: a failed clean-up afterwards drops reported metrics.
	b.Logf("%d containers: shim PSS %d KiB/ctr, shim RSS %d KiB/ctr, container PSS %d KiB/ctr, %d shims",
		n, shim.PSS/int64(n), shim.RSS/int64(n), ctrs.PSS/int64(n), shims)
	b.ReportMetric(float64(shim.PSS)/float64(n), "shim-pss-KiB/ctr")
	b.ReportMetric(float64(shim.RSS)/float64(n), "shim-rss-KiB/ctr")
	b.ReportMetric(float64(ctrs.PSS)/float64(n), "ctr-pss-KiB/ctr")
	b.ReportMetric(float64(shims), "shims")
}

func benchShimMemoryRaw(b *testing.B, n int) {
	ctx := testCtx(b)
	rc := rawClient(b)
	base := fmt.Sprintf("%s-%d", testID(b), b.N)
	pids := make([]uint32, n)
	inParallel(b, n, func(i int) error {
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
		if err := task.Start(ctx); err != nil {
			return err
		}
		pids[i] = task.Pid()
		return nil
	})
	reportShimMemory(b, n, pids)
}

func benchShimMemoryTend(b *testing.B, n, perShim int) {
	env := newEngineEnv(b, func(cfg *backend.Config) { cfg.ContainersPerShim = perShim })
	ctx := testCtx(b)
	ids := make([]string, n)
	for i := range n {
		ids[i] = env.create(backend.CreateOptions{Cmd: []string{"sleep", "1000000"}}).ID
	}
	inParallel(b, n, func(i int) error { return env.e.Start(ctx, ids[i]) })
	pids := make([]uint32, n)
	for i, id := range ids {
		pids[i] = env.inspect(id).Pid
	}
	reportShimMemory(b, n, pids)
	// Removed here, in parallel: one at a time they outlast the clean-up's
	// minute on a loaded machine.
	inParallel(b, n, func(i int) error { return env.e.Remove(ctx, ids[i], true) })
}
