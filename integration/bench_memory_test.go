package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

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
// tend-init the same way. Issue 16's figure is for 3,000 probes:
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
