package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/healthcheck"
)

// benchHealthInterval is the probe interval of BenchmarkHealthScale.
const benchHealthInterval = time.Second

// BenchmarkHealthScale runs N containers probed every second with `true`,
// by tend-init (init/N, the default) and by a containerd exec each (exec/N),
// for TEND_BENCH_HEALTH_SECONDS (default 60) and reports, for the probes in
// that window:
//
//   - jitter-p50-ms, jitter-p99-ms, jitter-max-ms: probe start minus its
//     scheduled start (previous end + interval), from the health logs;
//   - engine-cpu-ms/probe: the process's own CPU time (getrusage
//     RUSAGE_SELF: engine and libcontainerd) per probe, less the CPU of
//     this benchmark's polling of Inspect (bench-poll-cpu-ms/probe, timed
//     on its thread); engine-%core is the same as a share of one core;
//   - ctrd-cpu-ms/probe: CPU of our containerd and its shims, including the
//     runc processes they reaped, per probe;
//   - in-ctr-cpu-ms/probe: CPU of the containers' PID 1s and the children
//     they reaped: with tend-init, the probes themselves;
//   - probes/s and failed-probes;
//
// next to the floor of any probe, fork-exec-cpu-ms: the CPU of one fork and
// exec of /bin/true by a shell in a container; and next to the cost of a
// raw exec of `true` through the containerd client
// (Exec, Wait, Start, Delete) measured in the same run before the probes
// start: raw-exec-ms (wall), raw-exec-self-cpu-ms, raw-exec-ctrd-cpu-ms.
// It is a measurement, not a timed test: b.N is ignored beyond one run.
// TEND_BENCH_HEALTH_CPUPROFILE=file profiles the engine over the window.
//
//	go test -run XXX -bench BenchmarkHealthScale -benchtime 1x ./integration/
func BenchmarkHealthScale(b *testing.B) {
	dur := 60 * time.Second
	if s := os.Getenv("TEND_BENCH_HEALTH_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("TEND_BENCH_HEALTH_SECONDS=%q: want a positive number of seconds", s)
		}
		dur = time.Duration(n) * time.Second
	}
	off := false
	for _, mode := range []struct {
		name string
		init *bool
		ns   []int
	}{
		// The default: tend-init in each container runs the probes.
		{"init", nil, []int{50, 200}},
		// Init off: a containerd exec per probe, as Docker does. 200 of
		// them cannot keep a 1 s cadence on 2 cores; 50 shows the cost.
		{"exec", &off, []int{50}},
	} {
		for _, n := range mode.ns {
			b.Run(mode.name+"/"+strconv.Itoa(n), func(b *testing.B) { benchHealthScale(b, n, mode.init, dur) })
		}
	}
}

func benchHealthScale(b *testing.B, n int, init *bool, dur time.Duration) {
	ctx := testCtx(b)
	root, err := os.MkdirTemp("/tmp", "tend-bh-")
	if err != nil {
		b.Fatal(err)
	}
	e, err := backend.New(ctx, backend.Config{
		Root: root, ContainerdAddress: testEnv.Address, Namespace: testEnv.Namespace, StopTimeout: 2 * time.Second,
		InitPath: testEnv.InitPath,
	})
	if err != nil {
		os.RemoveAll(root)
		b.Fatalf("backend.New: %v", err)
	}
	var (
		idsMu sync.Mutex
		ids   []string
	)
	b.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		idsMu.Lock()
		all := slices.Clone(ids)
		idsMu.Unlock()
		parallel(8, len(all), func(i int) {
			if err := e.Remove(cctx, all[i], true); err != nil && !errdefs.IsNotFound(err) {
				b.Errorf("cleanup: remove %s: %v", all[i], err)
			}
		})
		if err := e.Close(cctx); err != nil {
			b.Errorf("cleanup: close engine: %v", err)
		}
		for _, id := range all {
			cleanupContainer(b, id)
		}
		os.RemoveAll(root)
	})
	run := func(name string, health *healthcheck.Config, cmd ...string) (string, error) {
		c, err := e.Create(ctx, backend.CreateOptions{Name: name, Rootfs: testEnv.Rootfs, Cmd: cmd, Health: health, Init: init})
		if err != nil {
			return "", err
		}
		idsMu.Lock()
		ids = append(ids, c.ID)
		idsMu.Unlock()
		return c.ID, e.Start(ctx, c.ID)
	}

	// The baseline: raw execs of `true` in a container without probes.
	baseID, err := run(fmt.Sprintf("hs%d-baseline", n), nil, "sleep", "100000")
	if err != nil {
		b.Fatalf("baseline container: %v", err)
	}
	raw := benchRawExec(b, ctx, baseID, 50)
	floor := benchForkExec(b, ctx, e, baseID, 200)

	// N probed containers, created and started by a few goroutines.
	cfg := &healthcheck.Config{Test: []string{"CMD", "true"}, Interval: benchHealthInterval, Timeout: 10 * time.Second, Retries: 3}
	names := make([]string, n)
	errs := make([]error, n)
	setup := time.Now()
	parallel(8, n, func(i int) {
		names[i] = fmt.Sprintf("hs%d-%03d", n, i)
		_, errs[i] = run(names[i], cfg, "sleep", "100000")
	})
	for i, err := range errs {
		if err != nil {
			b.Fatalf("container %s: %v", names[i], err)
		}
	}
	b.Logf("%d containers created and started in %v", n, time.Since(setup).Round(time.Millisecond))

	// Warm up (first probes are staggered over an interval), then measure.
	col := newHealthCollector(e, names)
	warm := time.Now().Add(2 * benchHealthInterval)
	for time.Now().Before(warm) {
		col.poll(ctx, b)
		benchPause(time.Until(warm))
	}
	var pids []int
	for _, name := range names {
		c, err := e.Inspect(ctx, name)
		if err != nil {
			b.Fatal(err)
		}
		pids = append(pids, int(c.Pid))
	}
	stopProfile := benchWindowProfile(b)
	start := time.Now()
	self0, ctrd0, ctr0 := selfCPU(), containerdCPU(), pidsCPU(pids)
	end := start.Add(dur)
	var pollCPU time.Duration // this benchmark's own reading of the logs
	for time.Now().Before(end) {
		benchPause(min(2*time.Second, time.Until(end)))
		pollCPU += col.timedPoll(ctx, b)
	}
	self1, ctrd1, ctr1 := selfCPU(), containerdCPU(), pidsCPU(pids)
	stopProfile()
	col.poll(ctx, b)
	elapsed := time.Since(start)

	jit, probes, failed := col.stats(start, end)
	if probes == 0 {
		b.Fatalf("no probe ran in the %v window", dur)
	}
	slices.Sort(jit)
	pct := func(p float64) float64 {
		if len(jit) == 0 {
			return 0
		}
		return float64(jit[min(int(p*float64(len(jit))), len(jit)-1)]) / 1e6
	}
	b.ReportMetric(pct(0.50), "jitter-p50-ms")
	b.ReportMetric(pct(0.99), "jitter-p99-ms")
	b.ReportMetric(pct(1), "jitter-max-ms")
	b.ReportMetric(float64(probes)/elapsed.Seconds(), "probes/s")
	b.ReportMetric(float64(failed), "failed-probes")
	b.ReportMetric(float64(col.gaps), "log-gaps")
	engineCPU := self1 - self0 - pollCPU
	b.ReportMetric(float64(engineCPU)/1e6/float64(probes), "engine-cpu-ms/probe")
	b.ReportMetric(100*engineCPU.Seconds()/elapsed.Seconds(), "engine-%core")
	b.ReportMetric(float64(pollCPU)/1e6/float64(probes), "bench-poll-cpu-ms/probe")
	b.ReportMetric(float64(ctrd1-ctrd0)/1e6/float64(probes), "ctrd-cpu-ms/probe")
	b.ReportMetric(float64(ctr1-ctr0)/1e6/float64(probes), "in-ctr-cpu-ms/probe")
	b.ReportMetric(floor, "fork-exec-cpu-ms")
	b.ReportMetric(raw.wall, "raw-exec-ms")
	b.ReportMetric(raw.self, "raw-exec-self-cpu-ms")
	b.ReportMetric(raw.ctrd, "raw-exec-ctrd-cpu-ms")
	b.Logf("%d containers, %v window: %d probes (%.1f/s, ideal %.1f/s), %d failed, %d jitter samples; engine CPU %v (%.1f%% of a core; the benchmark's polls %v more), containerd+shims CPU %v, in the containers %v",
		n, dur, probes, float64(probes)/elapsed.Seconds(), float64(n)/benchHealthInterval.Seconds(), failed, len(jit),
		engineCPU.Round(time.Millisecond), 100*engineCPU.Seconds()/elapsed.Seconds(), pollCPU.Round(time.Millisecond), time.Duration(ctrd1-ctrd0).Round(time.Millisecond),
		time.Duration(ctr1-ctr0).Round(time.Millisecond))
}

// benchWindowProfile starts a CPU profile of this process for the measured
// window alone, written to $TEND_BENCH_HEALTH_CPUPROFILE when it is set
// (-test.cpuprofile would include the containers' creation and removal);
// the returned func stops it.
func benchWindowProfile(b *testing.B) func() {
	path := os.Getenv("TEND_BENCH_HEALTH_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatalf("TEND_BENCH_HEALTH_CPUPROFILE: %v", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		b.Fatalf("TEND_BENCH_HEALTH_CPUPROFILE: %v (is -test.cpuprofile set too?)", err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Errorf("TEND_BENCH_HEALTH_CPUPROFILE: %v", err)
		}
	}
}

// benchForkExec measures the floor of any probe: the CPU (user+sys, ms) of
// one fork and exec of /bin/true by the container's shell, k times in a
// loop, as busybox time reports it.
func benchForkExec(b *testing.B, ctx context.Context, e *backend.Engine, id string, k int) float64 {
	var out bytes.Buffer
	x, err := e.Exec(ctx, id, backend.ExecOptions{Stdout: &out, Stderr: &out, Cmd: []string{"time", "sh", "-c",
		fmt.Sprintf("i=0; while [ $i -lt %d ]; do /bin/true; i=$((i+1)); done", k)}})
	if err != nil {
		b.Fatal(err)
	}
	if code, err := x.Wait(ctx); code != 0 || err != nil {
		b.Fatalf("fork+exec loop: exit %d, %v: %s", code, err, out.String())
	}
	m := regexp.MustCompile(`user\s+(\d+)m\s*([\d.]+)s\s+sys\s+(\d+)m\s*([\d.]+)s`).FindStringSubmatch(out.String())
	if m == nil {
		b.Fatalf("fork+exec loop: cannot read the times in %q", out.String())
	}
	secs := 0.0
	for _, i := range []int{1, 3} {
		mins, _ := strconv.ParseFloat(m[i], 64)
		s, _ := strconv.ParseFloat(m[i+1], 64)
		secs += 60*mins + s
	}
	return secs * 1000 / float64(k)
}

type rawExecCost struct{ wall, self, ctrd float64 } // ms per exec

// benchRawExec execs `true` k times in the running task of id through the
// raw containerd client, one at a time.
func benchRawExec(b *testing.B, ctx context.Context, id string, k int) rawExecCost {
	rc := rawClient(b)
	ctr, err := rc.LoadContainer(ctx, id)
	if err != nil {
		b.Fatal(err)
	}
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	fifoDir := filepath.Join(testEnv.FIFORoot, "bench-raw-"+id[:12])
	b.Cleanup(func() { os.RemoveAll(fifoDir) })
	creator := cio.NewCreator(cio.WithFIFODir(fifoDir), cio.WithStreams(nil, io.Discard, io.Discard))
	proc := &specs.Process{Args: []string{"true"}, Cwd: "/", Env: []string{"PATH=/bin:/usr/bin"}}
	one := func(i int) {
		p, err := task.Exec(ctx, fmt.Sprintf("raw-%d", i), proc, creator)
		if err != nil {
			b.Fatal(err)
		}
		exitCh, err := p.Wait(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Start(ctx); err != nil {
			b.Fatal(err)
		}
		if st := <-exitCh; st.ExitCode() != 0 {
			b.Fatalf("raw exec of true: exit %d", st.ExitCode())
		}
		if _, err := p.Delete(ctx); err != nil {
			b.Fatal(err)
		}
	}
	one(k) // warm up
	t0, self0, ctrd0 := time.Now(), selfCPU(), containerdCPU()
	for i := range k {
		one(i)
	}
	wall, self, ctrd := time.Since(t0), selfCPU()-self0, containerdCPU()-ctrd0
	per := func(d time.Duration) float64 { return float64(d) / 1e6 / float64(k) }
	return rawExecCost{wall: per(wall), self: per(self), ctrd: per(ctrd)}
}

// healthCollector gathers the health log entries of many containers by
// polling Inspect often enough that the 5-entry log never wraps between
// polls.
type healthCollector struct {
	e     *backend.Engine
	names []string
	seen  map[string]map[int64]healthcheck.Result // name -> start -> result
	gaps  int                                     // polls that found only new entries in a full log
}

func newHealthCollector(e *backend.Engine, names []string) *healthCollector {
	return &healthCollector{e: e, names: names, seen: map[string]map[int64]healthcheck.Result{}}
}

// timedPoll polls and returns the CPU time the poll took: it runs on one
// OS thread (Inspect works on the caller's goroutine), so that the
// engine's CPU can be told apart from the benchmark's.
func (c *healthCollector) timedPoll(ctx context.Context, b *testing.B) time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0 := threadCPU()
	c.poll(ctx, b)
	return threadCPU() - t0
}

// threadCPU is the user+system CPU time of the calling thread.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (c *healthCollector) poll(ctx context.Context, b *testing.B) {
	for _, name := range c.names {
		r, err := c.e.Inspect(ctx, name)
		if err != nil {
			b.Fatalf("Inspect %s: %v", name, err)
		}
		if r.State != backend.StateRunning {
			b.Fatalf("container %s is %s (exit %d, %q)", name, r.State, r.ExitCode, r.Error)
		}
		if r.Health == nil {
			continue
		}
		m := c.seen[name]
		first := m == nil
		if first {
			m = map[int64]healthcheck.Result{}
			c.seen[name] = m
		}
		fresh := 0
		for _, res := range r.Health.Log {
			k := res.Start.UnixNano()
			if _, ok := m[k]; !ok {
				m[k] = res
				fresh++
			}
		}
		if !first && fresh == healthcheck.DefaultLogEntries {
			c.gaps++
		}
	}
}

// stats returns the start jitter of every probe that started in
// [from, to] after a previous probe, and the number of probes and of failed
// probes that ran entirely in the window.
func (c *healthCollector) stats(from, to time.Time) (jitter []time.Duration, probes, failed int) {
	for _, m := range c.seen {
		rs := make([]healthcheck.Result, 0, len(m))
		for _, r := range m {
			rs = append(rs, r)
		}
		slices.SortFunc(rs, func(a, b healthcheck.Result) int { return a.Start.Compare(b.Start) })
		for i, r := range rs {
			if r.Start.Before(from) || r.End.After(to) {
				continue
			}
			probes++
			if r.ExitCode != 0 {
				failed++
			}
			if i > 0 {
				jitter = append(jitter, r.Start.Sub(rs[i-1].End.Add(benchHealthInterval)))
			}
		}
	}
	return jitter, probes, failed
}

// parallel runs f(0..n-1) on w goroutines and waits for them.
func parallel(w, n int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(w, n) {
		wg.Go(func() {
			for i := range next {
				f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// benchPause waits d: the benchmark measures over wall-clock windows (this
// is not synchronisation with anything).
func benchPause(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	<-t.C
}

// selfCPU is the user+system CPU time of this process.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// containerdCPU is the CPU time of our containerd and its live shims,
// including the children they reaped (runc, probe processes).
func containerdCPU() time.Duration {
	pids := ourShims()
	if testEnv.Daemon != nil {
		pids = append(pids, testEnv.Daemon.Pid())
	}
	var ticks int64
	for _, pid := range pids {
		ticks += procTicks(pid)
	}
	return time.Duration(ticks) * (time.Second / clockTicks)
}

// pidsCPU is the CPU time of the containers' PID 1s and the children they
// reaped: with tend-init, the probes.
func pidsCPU(pids []int) time.Duration {
	var ticks int64
	for _, pid := range pids {
		ticks += procTicks(pid)
	}
	return time.Duration(ticks) * (time.Second / clockTicks)
}

// clockTicks is USER_HZ, 100 on Linux everywhere it matters.
const clockTicks = 100

// procTicks returns utime+stime+cutime+cstime of pid from /proc/pid/stat.
func procTicks(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	// After the comm: state(0) ppid pgrp session tty tpgid flags minflt
	// cminflt majflt cmajflt utime(11) stime cutime cstime(14).
	if len(f) < 15 {
		return 0
	}
	var total int64
	for _, x := range f[11:15] {
		v, _ := strconv.ParseInt(x, 10, 64)
		total += v
	}
	return total
}
