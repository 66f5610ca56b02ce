package initprobe

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkProbe runs `true` through tend-init one probe at a time and
// reports, per probe, tend-init's own CPU and that of the probes it reaped
// (the cost inside a container of a probe that tend-init serves) and the
// engine side's CPU (this process: connect, request, replies), with a
// connection per probe (Start) and with the connection kept (a Pool, as
// the engine runs them):
//
//	go test -run XXX -bench Probe ./healthcheck/initprobe/
func BenchmarkProbe(b *testing.B) {
	for _, tc := range []struct {
		name   string
		pooled bool
	}{
		{"conn-per-probe", false},
		{"pooled", true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var pool *Pool // nil: Start, a connection per probe
			if tc.pooled {
				pool = NewPool()
				defer pool.Close()
			}
			sock, initPid := startServer(b)
			c := ctx(b) // one: each registers a cleanup
			own0, kids0 := cpuOf(initPid)
			self0 := selfCPU()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				p, err := pool.Start(c, sock, []string{"true"}, nil, StartOptions{ServerPid: initPid})
				if err != nil {
					b.Fatal(err)
				}
				if code, err := p.Wait(c); code != 0 || err != nil {
					b.Fatalf("probe: %d, %v", code, err)
				}
			}
			elapsed := time.Since(start)
			self1 := selfCPU()
			own1, kids1 := cpuOf(initPid)
			b.ReportMetric(float64(self1-self0)/float64(time.Millisecond)/float64(b.N), "engine-cpu-ms/probe")
			b.ReportMetric(float64(own1-own0)/float64(time.Millisecond)/float64(b.N), "init-cpu-ms/probe")
			b.ReportMetric(float64(kids1-kids0)/float64(time.Millisecond)/float64(b.N), "probe-cpu-ms/probe")
			b.ReportMetric(float64(elapsed)/float64(time.Millisecond)/float64(b.N), "wall-ms/probe")
		})
	}
}

// selfCPU returns this process's CPU time (user and system).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuOf returns pid's own CPU time and that of the children it reaped.
func cpuOf(pid int) (own, children time.Duration) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	tick := func(i int) time.Duration {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		return time.Duration(n) * (time.Second / 100)
	}
	return tick(11) + tick(12), tick(13) + tick(14)
}
