package dockerapi

import (
	"bufio"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"

	"github.com/tendhq/tend/backend"
)

// systemCPUNanos is the host's total CPU time in nanoseconds, from the
// first line of /proc/stat, as dockerd reports system_cpu_usage.
func systemCPUNanos() uint64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 8 || fields[0] != "cpu" {
		return 0
	}
	var ticks uint64
	for _, v := range fields[1:8] {
		n, _ := strconv.ParseUint(v, 10, 64)
		ticks += n
	}
	const clockTicks = 100 // USER_HZ on Linux
	return ticks * (1e9 / clockTicks)
}

// sample reads one stats document of c; a container that is not running
// reads as zeros, as dockerd reports it.
func (s *Server) sample(r *http.Request, c *backend.Container) (container.StatsResponse, error) {
	out := container.StatsResponse{ID: c.ID, Name: "/" + c.Name, OSType: "linux", Read: time.Now()}
	if c.State != backend.StateRunning && c.State != backend.StatePaused {
		return out, nil
	}
	st, err := s.engine.Stats(r.Context(), c.ID)
	if errdefs.IsFailedPrecondition(err) || errdefs.IsNotFound(err) {
		return out, nil
	}
	if err != nil {
		return out, err
	}
	out.Read = st.Read
	out.CPUStats = container.CPUStats{
		CPUUsage:       container.CPUUsage{TotalUsage: st.CPU.UsageNanos, UsageInKernelmode: st.CPU.SystemNanos, UsageInUsermode: st.CPU.UserNanos},
		SystemUsage:    systemCPUNanos(),
		OnlineCPUs:     uint32(runtime.NumCPU()),
		ThrottlingData: container.ThrottlingData{Periods: st.CPU.Periods, ThrottledPeriods: st.CPU.ThrottledPeriods, ThrottledTime: st.CPU.ThrottledNanos},
	}
	limit := st.Memory.Limit
	if host := uint64(memTotal()); limit == 0 || limit > host {
		limit = host
	}
	out.MemoryStats = container.MemoryStats{
		Usage: st.Memory.Usage, MaxUsage: st.Memory.MaxUsage, Limit: limit,
		Stats: map[string]uint64{"cache": st.Memory.Cache, "rss": st.Memory.RSS, "oom_kill": st.Memory.OOMKills},
	}
	out.PidsStats = container.PidsStats{Current: st.Pids.Current, Limit: st.Pids.Limit}
	out.BlkioStats = container.BlkioStats{IoServiceBytesRecursive: []container.BlkioStatEntry{
		{Op: "read", Value: st.Blkio.ReadBytes}, {Op: "write", Value: st.Blkio.WriteBytes},
	}}
	if len(st.Networks) > 0 {
		out.Networks = make(map[string]container.NetworkStats, len(st.Networks))
		for name, n := range st.Networks {
			out.Networks[name] = container.NetworkStats{
				RxBytes: n.RxBytes, RxPackets: n.RxPackets, RxErrors: n.RxErrors, RxDropped: n.RxDropped,
				TxBytes: n.TxBytes, TxPackets: n.TxPackets, TxErrors: n.TxErrors, TxDropped: n.TxDropped,
			}
		}
	}
	return out, nil
}

// statsContainer answers GET /containers/{id}/stats: one document with
// stream=false (two samples a period apart, so that precpu_stats is set,
// unless one-shot=true), else one per period until the client goes away or
// the container stops.
func (s *Server) statsContainer(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	ref := r.PathValue("ref")
	c, err := s.engine.Inspect(ctx, ref)
	if err != nil {
		return err
	}
	stream := r.URL.Query().Get("stream") == "" || boolParam(r, "stream")
	oneShot := boolParam(r, "one-shot")
	prev, err := s.sample(r, c)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	if !stream && oneShot {
		writeJSON(w, http.StatusOK, prev)
		return nil
	}
	tick := time.NewTicker(s.opts.StatsInterval)
	defer tick.Stop()
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	out := newLineWriter(w, rc)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if c, err = s.engine.Inspect(ctx, ref); err != nil {
			return nil // removed: the stream ends
		}
		cur, err := s.sample(r, c)
		if err != nil {
			return nil
		}
		cur.PreCPUStats, cur.PreRead = prev.CPUStats, prev.Read
		if err := out.send(cur); err != nil || !stream {
			return nil
		}
		prev = cur
	}
}
