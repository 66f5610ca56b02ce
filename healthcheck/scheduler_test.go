package healthcheck_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/tendhq/tend/healthcheck"
	"github.com/tendhq/tend/internal/testutil"
)

func TestProbeSequence(t *testing.T) {
	base := healthcheck.Config{Test: []string{"CMD-SHELL", "check"}, Interval: 10 * time.Second,
		Timeout: 3 * time.Second, StartInterval: time.Second, Retries: 2}
	with := func(f func(*healthcheck.Config)) healthcheck.Config { c := base; f(&c); return c }
	type step struct {
		gap         time.Duration // from the previous probe's end; the first probe is staggered instead
		b           behaviour
		wantExit    int
		wantOutput  string
		wantStatus  string
		wantStreak  int
		wantChanged bool
	}
	ok := func(gap time.Duration, status string, changed bool) step {
		return step{gap: gap, wantStatus: status, wantChanged: changed}
	}
	fail := func(gap time.Duration, code int, status string, streak int, changed bool) step {
		return step{gap: gap, b: behaviour{code: code}, wantExit: code, wantStatus: status, wantStreak: streak, wantChanged: changed}
	}
	threeLog := []healthcheck.Result{{ExitCode: 0}, {ExitCode: 0}, {ExitCode: 0}, {ExitCode: 0}, {ExitCode: 1}}
	for _, tc := range []struct {
		name       string
		cfg        healthcheck.Config
		opts       []healthcheck.Option
		initial    *healthcheck.State
		logEntries int
		steps      []step
	}{
		{"healthy then steady", base, nil, nil, 5, []step{
			ok(0, "healthy", true),
			ok(10*time.Second, "healthy", false),
			ok(10*time.Second, "healthy", false),
		}},
		{"start period uses start interval and ignores failures", with(func(c *healthcheck.Config) { c.StartPeriod = 5 * time.Second }), nil, nil, 5, []step{
			fail(0, 1, "starting", 0, false),
			fail(time.Second, 1, "starting", 0, false),
			fail(time.Second, 1, "starting", 0, false),
			fail(time.Second, 1, "starting", 0, false),
			fail(time.Second, 1, "starting", 0, false),
			fail(time.Second, 1, "starting", 1, false), // start period over: counts
			fail(10*time.Second, 1, "unhealthy", 2, true),
			ok(10*time.Second, "healthy", true),
		}},
		{"success in start period switches to interval", with(func(c *healthcheck.Config) { c.StartPeriod = time.Minute }), nil, nil, 5, []step{
			fail(0, 1, "starting", 0, false),
			ok(time.Second, "healthy", true),
			fail(10*time.Second, 1, "healthy", 1, false), // not starting: counts in start period
			fail(10*time.Second, 1, "unhealthy", 2, true),
		}},
		{"exit codes 2 and other are failures", with(func(c *healthcheck.Config) { c.Retries = 3 }), nil, nil, 5, []step{
			fail(0, 2, "starting", 1, false),
			fail(10*time.Second, 7, "starting", 2, false),
			fail(10*time.Second, 1, "unhealthy", 3, true),
			fail(10*time.Second, 255, "unhealthy", 4, false),
			ok(10*time.Second, "healthy", true),
		}},
		{"timeout kills the probe and fails", with(func(c *healthcheck.Config) { c.Retries = 1 }), nil, nil, 5, []step{
			{b: behaviour{hang: true, out: "partial"}, wantExit: -1, wantOutput: "health check timed out after 3s: partial", wantStatus: "unhealthy", wantStreak: 1, wantChanged: true},
			ok(10*time.Second, "healthy", true),
		}},
		{"kill that does not end the probe is abandoned", base, nil, nil, 5, []step{
			{b: behaviour{hang: true, ignoreKill: true}, wantExit: -1, wantOutput: "health check timed out after 3s", wantStatus: "starting", wantStreak: 1},
			ok(10*time.Second, "healthy", true),
		}},
		{"exec start errors fail", base, nil, nil, 5, []step{
			{b: behaviour{err: errors.New("no such container")}, wantExit: -1, wantOutput: "health check failed to start: no such container", wantStatus: "starting", wantStreak: 1},
			{gap: 10 * time.Second, b: behaviour{err: errors.New("boom")}, wantExit: -1, wantOutput: "health check failed to start: boom", wantStatus: "unhealthy", wantStreak: 2, wantChanged: true},
		}},
		{"wedged exec start gives up after 30s", base, nil, nil, 5, []step{
			{b: behaviour{wedged: true}, wantExit: -1, wantOutput: "health check failed to start: exec did not start within 30s: unavailable", wantStatus: "starting", wantStreak: 1},
			ok(10*time.Second, "healthy", true),
		}},
		{"output is cut at the cap", base, []healthcheck.Option{healthcheck.WithLogLimits(5, 10)}, nil, 5, []step{
			{b: behaviour{out: strings.Repeat("x", 25)}, wantOutput: "xxxxxxxxxx\n[output truncated: 15 bytes omitted]", wantStatus: "healthy", wantChanged: true},
			{gap: 10 * time.Second, b: behaviour{out: "short"}, wantOutput: "short", wantStatus: "healthy"},
		}},
		{"log keeps the last entries", base, []healthcheck.Option{healthcheck.WithLogLimits(2, 0)}, nil, 2, []step{
			ok(0, "healthy", true),
			fail(10*time.Second, 1, "healthy", 1, false),
			ok(10*time.Second, "healthy", false),
		}},
		{"resumed healthy state keeps its streak", base, nil, &healthcheck.State{Status: "healthy", FailingStreak: 1, Log: threeLog}, 5, []step{
			fail(0, 1, "unhealthy", 2, true),
		}},
		{"resumed unhealthy state recovers", base, nil, &healthcheck.State{Status: "unhealthy", FailingStreak: 9}, 5, []step{
			ok(0, "healthy", true),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			h := newHarness(t, func(string) behaviour { return tc.steps[int(n.Add(1))-1].b }, tc.opts...)
			const id = "c1"
			if err := h.s.Add(id, tc.cfg, tc.initial); err != nil {
				t.Fatal(err)
			}
			wantLog := 0
			if tc.initial != nil {
				wantLog = len(tc.initial.Log)
			}
			at := t0.Add(healthcheck.FirstDelay(id, tc.cfg))
			for i, s := range tc.steps {
				if i > 0 {
					at = at.Add(s.gap)
				}
				h.advanceTo(at)
				end := at
				if s.b.wedged {
					end = at.Add(30 * time.Second)
					h.advanceTo(end)
				}
				if s.b.err == nil && !s.b.wedged {
					p := h.start(fmt.Sprintf("probe %d", i))
					if p.id != id || !p.at.Equal(at) || !reflect.DeepEqual(p.argv, []string{"/bin/sh", "-c", "check"}) {
						t.Fatalf("probe %d: started %s %q at %v, want %s at %v", i, p.id, p.argv, p.at.Sub(t0), id, at.Sub(t0))
					}
					if s.b.hang {
						end = at.Add(tc.cfg.Timeout)
						h.advanceTo(end)
						if s.b.ignoreKill {
							end = end.Add(10 * time.Second)
							h.advanceTo(end)
						}
						recv(t, p.waited, "timed out probe to be waited")
						if !p.wasKilled() {
							t.Fatalf("probe %d: timed out but not killed", i)
						}
					}
				}
				got := h.note(fmt.Sprintf("result %d", i))
				wantLog = min(wantLog+1, tc.logEntries)
				if got.id != id || got.st.Status != s.wantStatus || got.st.FailingStreak != s.wantStreak || got.changed != s.wantChanged || len(got.st.Log) != wantLog {
					t.Fatalf("probe %d: notify(%s, status %q, streak %d, %d log entries, changed %v); want status %q streak %d, %d entries, changed %v",
						i, got.id, got.st.Status, got.st.FailingStreak, len(got.st.Log), got.changed, s.wantStatus, s.wantStreak, wantLog, s.wantChanged)
				}
				want := healthcheck.Result{Start: at, End: end, ExitCode: s.wantExit, Output: s.wantOutput}
				if r := got.st.Log[len(got.st.Log)-1]; r != want {
					t.Fatalf("probe %d: result %+v, want %+v", i, r, want)
				}
				if st, ok := h.s.State(id); !ok || !reflect.DeepEqual(st, got.st) {
					t.Fatalf("probe %d: State() = %+v, %v; want the notified %+v", i, st, ok, got.st)
				}
				at = end
			}
		})
	}
}

func TestAdd(t *testing.T) {
	h := newHarness(t, func(string) behaviour { return behaviour{} })
	cmd := healthcheck.Config{Test: []string{"CMD", "true"}}
	if err := h.s.Add("c1", cmd, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		id    string
		cfg   healthcheck.Config
		check func(error) bool
	}{
		{"invalid config", "c2", healthcheck.Config{Test: []string{"CMD"}}, errdefs.IsInvalidArgument},
		{"empty id", "", cmd, errdefs.IsInvalidArgument},
		{"duplicate", "c1", cmd, errdefs.IsAlreadyExists},
		{"none is not probed", "c3", healthcheck.Config{Test: []string{"NONE"}}, func(err error) bool { return err == nil }},
	} {
		if err := h.s.Add(tc.id, tc.cfg, nil); !tc.check(err) {
			t.Errorf("%s: Add = %v", tc.name, err)
		}
	}
	if _, ok := h.s.State("c3"); ok {
		t.Error("State of a NONE container exists")
	}
	if st, ok := h.s.State("c1"); !ok || st.Status != healthcheck.StatusStarting {
		t.Errorf("State(c1) = %+v, %v; want starting", st, ok)
	}
	h.s.Close()
	if err := h.s.Add("c4", cmd, nil); !errors.Is(err, healthcheck.ErrClosed) || !errdefs.IsFailedPrecondition(err) {
		t.Errorf("Add after Close = %v, want ErrClosed", err)
	}
}

var quick = healthcheck.Config{Test: []string{"CMD", "check"}, Interval: 10 * time.Second, Timeout: time.Hour,
	StartInterval: 5 * time.Second, StartPeriod: 20 * time.Second, Retries: 1}

// scripted returns behaviours from ch, so the test decides each probe.
func scripted(ch chan behaviour) func(string) behaviour {
	return func(string) behaviour { return <-ch }
}

// hangingFirstProbe adds c1 and runs its first probe, which hangs until
// killed; script decides the probes after it.
func hangingFirstProbe(t *testing.T) (h *harness, script chan behaviour, d0 time.Duration, p *fakeProc) {
	t.Helper()
	script = make(chan behaviour, 10)
	h = newHarness(t, scripted(script))
	d0 = healthcheck.FirstDelay("c1", quick)
	if err := h.s.Add("c1", quick, nil); err != nil {
		t.Fatal(err)
	}
	script <- behaviour{hang: true}
	h.advanceTo(t0.Add(d0))
	return h, script, d0, h.start("first probe")
}

func TestPauseResume(t *testing.T) {
	h, script, d0, p := hangingFirstProbe(t)

	h.s.Pause("c1")
	recv(t, p.waited, "paused probe to be waited")
	if !p.wasKilled() {
		t.Fatal("Pause did not kill the running probe")
	}
	h.clock.Advance(time.Hour) // nothing may run while paused
	if st, _ := h.s.State("c1"); st.Status != "starting" || len(st.Log) != 0 {
		t.Fatalf("state after cancelled probe = %+v, want untouched", st)
	}

	h.s.Resume("c1")
	resumed := h.clock.Now()
	script <- behaviour{}
	h.advanceTo(resumed.Add(d0))
	if p := h.start("probe after resume"); !p.at.Equal(resumed.Add(d0)) {
		t.Fatalf("probe after resume at %v, want %v (a probe ran while paused?)", p.at.Sub(t0), resumed.Add(d0).Sub(t0))
	}
	if n := h.note("result after resume"); n.st.Status != "healthy" || !n.changed || len(n.st.Log) != 1 {
		t.Fatalf("notify after resume = %+v, want healthy, changed, one result", n)
	}
}

// TestQuiesce: Quiesce returns only once the running probe was killed and
// waited for, and no probe starts after it; with nothing running it returns
// at once, and a probe that does not end leaves it to ctx.
func TestQuiesce(t *testing.T) {
	h, script, d0, p := hangingFirstProbe(t)

	if err := h.s.Quiesce(context.Background(), "c1"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.waited:
	default:
		t.Fatal("Quiesce returned before the running probe was waited for")
	}
	if !p.wasKilled() {
		t.Fatal("Quiesce did not kill the running probe")
	}
	h.clock.Advance(time.Hour)
	h.expectNoStart("after Quiesce")
	if err := h.s.Quiesce(context.Background(), "c1"); err != nil {
		t.Fatalf("Quiesce with nothing running: %v", err)
	}
	if err := h.s.Quiesce(context.Background(), "unknown"); err != nil {
		t.Fatalf("Quiesce of an unknown container: %v", err)
	}

	// A probe that ignores its kill: Quiesce gives up when ctx ends.
	h.s.Resume("c1")
	resumed := h.clock.Now()
	script <- behaviour{hang: true, ignoreKill: true}
	h.advanceTo(resumed.Add(d0))
	stuck := h.start("probe that ignores kill")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.s.Quiesce(ctx, "c1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Quiesce with a stuck probe and a done ctx: %v, want context.Canceled", err)
	}
	stuck.finish(0)
}

func TestReset(t *testing.T) {
	script := make(chan behaviour, 10)
	h := newHarness(t, scripted(script))
	d0 := healthcheck.FirstDelay("c1", quick)
	if err := h.s.Add("c1", quick, nil); err != nil {
		t.Fatal(err)
	}
	probe := func(at time.Time, b behaviour, wantStatus string, wantChanged bool) {
		t.Helper()
		script <- b
		h.advanceTo(at)
		if p := h.start("probe"); !p.at.Equal(at) {
			t.Fatalf("probe at %v, want %v", p.at.Sub(t0), at.Sub(t0))
		}
		if n := h.note("result"); n.st.Status != wantStatus || n.changed != wantChanged {
			t.Fatalf("at %v: notify status %q changed %v, want %q %v", at.Sub(t0), n.st.Status, n.changed, wantStatus, wantChanged)
		}
	}
	at := t0.Add(d0)
	probe(at, behaviour{}, "healthy", true)
	at = at.Add(10 * time.Second)
	probe(at, behaviour{code: 1}, "unhealthy", true) // healthy: counts in the start period

	// Restart while a probe hangs: it is killed and the start period begins again.
	at = at.Add(10 * time.Second)
	script <- behaviour{hang: true}
	h.advanceTo(at)
	p := h.start("hanging probe")
	h.s.Reset("c1")
	recv(t, p.waited, "probe cancelled by Reset to be waited")
	if !p.wasKilled() {
		t.Fatal("Reset did not kill the running probe")
	}
	if st, _ := h.s.State("c1"); st.Status != "starting" || st.FailingStreak != 0 || len(st.Log) != 2 {
		t.Fatalf("State after Reset = %+v, want starting, streak 0, log kept", st)
	}
	at = at.Add(d0)
	probe(at, behaviour{code: 1}, "starting", false) // in the new start period: ignored
	at = at.Add(5 * time.Second)                     // start interval
	probe(at, behaviour{}, "healthy", true)
}

func TestRemoveCancelsProbe(t *testing.T) {
	h := newHarness(t, func(string) behaviour { return behaviour{hang: true} })
	if err := h.s.Add("c1", quick, nil); err != nil {
		t.Fatal(err)
	}
	h.advanceTo(t0.Add(healthcheck.FirstDelay("c1", quick)))
	p := h.start("probe")
	h.s.Remove("c1")
	recv(t, p.waited, "removed probe to be waited")
	if _, ok := h.s.State("c1"); ok {
		t.Error("State exists after Remove")
	}
	h.s.Close()
	select {
	case n := <-h.notes:
		t.Errorf("notified %+v for a removed container", n)
	default:
	}
}

func ids(n int) []string {
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, fmt.Sprintf("container-%02d", i))
	}
	return out
}

func TestConcurrencyCap(t *testing.T) {
	h := newHarness(t, func(string) behaviour { return behaviour{hang: true} }, healthcheck.WithMaxConcurrent(2))
	for _, id := range ids(10) {
		if err := h.s.Add(id, quick, nil); err != nil {
			t.Fatal(err)
		}
	}
	h.clock.Advance(quick.StartInterval) // every first probe is due
	started := map[string]bool{}
	running := []*fakeProc{h.start("probe 1"), h.start("probe 2")}
	for _, p := range running {
		started[p.id] = true
	}
	for len(started) < 10 {
		// Free one slot: exactly one more probe may start.
		running[0].finish(0)
		h.note("result")
		p := h.start(fmt.Sprintf("probe %d", len(started)+1))
		if started[p.id] {
			t.Fatalf("%s probed twice before others had their first probe", p.id)
		}
		started[p.id] = true
		running = append(running[1:], p)
	}
	if m := h.ex.max(); m != 2 {
		t.Fatalf("at most %d probes ran at once, want exactly 2", m)
	}
}

func TestFirstProbesStaggered(t *testing.T) {
	h := newHarness(t, func(string) behaviour { return behaviour{} })
	due := map[time.Time][]string{}
	for _, id := range ids(10) {
		d := healthcheck.FirstDelay(id, quick)
		if d < 0 || d >= quick.StartInterval {
			t.Fatalf("first delay of %s = %v, want within [0, %v)", id, d, quick.StartInterval)
		}
		due[t0.Add(d)] = append(due[t0.Add(d)], id)
		if err := h.s.Add(id, quick, nil); err != nil {
			t.Fatal(err)
		}
	}
	if len(due) < 8 {
		t.Fatalf("10 containers share only %d first-probe times", len(due))
	}
	times := slices.SortedFunc(func(yield func(time.Time) bool) {
		for k := range due {
			if !yield(k) {
				return
			}
		}
	}, time.Time.Compare)
	for _, at := range times {
		h.advanceTo(at)
		var got []string
		for range due[at] {
			p := h.start("staggered probe")
			if !p.at.Equal(at) {
				t.Fatalf("%s probed at %v, want %v", p.id, p.at.Sub(t0), at.Sub(t0))
			}
			got = append(got, p.id)
		}
		slices.Sort(got)
		if !slices.Equal(got, due[at]) {
			t.Fatalf("at %v probed %q, want %q", at.Sub(t0), got, due[at])
		}
	}
}

func TestSlowProbeDoesNotDelayOthers(t *testing.T) {
	h := newHarness(t, func(id string) behaviour { return behaviour{hang: id == "slow"} }, healthcheck.WithMaxConcurrent(2))
	dSlow, dFast := healthcheck.FirstDelay("slow", quick), healthcheck.FirstDelay("fast", quick)
	for _, id := range []string{"slow", "fast"} {
		if err := h.s.Add(id, quick, nil); err != nil {
			t.Fatal(err)
		}
	}
	first := map[string]time.Time{"slow": t0.Add(dSlow), "fast": t0.Add(dFast)}
	order := []string{"slow", "fast"}
	if dFast < dSlow {
		order = []string{"fast", "slow"}
	}
	for _, id := range order {
		h.advanceTo(first[id])
		if p := h.start(id); p.id != id {
			t.Fatalf("probed %s, want %s", p.id, id)
		}
		if id == "fast" {
			h.note("fast result") // before time moves on, so it ends at its start
		}
	}
	at := first["fast"]
	for i := 0; i < 5; i++ {
		at = at.Add(quick.Interval)
		h.advanceTo(at)
		if p := h.start("fast probe"); p.id != "fast" || !p.at.Equal(at) {
			t.Fatalf("probe %d: %s at %v, want fast at %v", i, p.id, p.at.Sub(t0), at.Sub(t0))
		}
		h.note("fast result")
	}
}

func TestCloseLeavesNothingRunning(t *testing.T) {
	before := runtime.NumGoroutine()
	h := newHarness(t, func(string) behaviour { return behaviour{hang: true, ignoreKill: true} })
	for _, id := range ids(5) {
		if err := h.s.Add(id, quick, nil); err != nil {
			t.Fatal(err)
		}
	}
	h.clock.Advance(quick.StartInterval)
	var procs []*fakeProc
	for range 5 {
		procs = append(procs, h.start("probe"))
	}
	// Kill is ignored, so Close must also cancel Wait after the reap timeout.
	closed := make(chan error)
	go func() { closed <- h.s.Close() }()
	reapAt := h.clock.Now().Add(10 * time.Second)
	testutil.Poll(t, "every probe killed and its reap timer armed", func() bool {
		for _, p := range procs {
			if !p.wasKilled() {
				return false
			}
		}
		n := 0
		for _, d := range h.clock.Deadlines() {
			if d.Equal(reapAt) {
				n++
			}
		}
		return n == len(procs)
	})
	h.clock.Advance(10 * time.Second)
	if err := recv(t, closed, "Close"); err != nil {
		t.Fatalf("Close = %v", err)
	}
	for _, p := range procs {
		recv(t, p.waited, "probe to be waited")
	}
	if err := h.s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left, had %d:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond) // polling with a deadline, not synchronising
	}
}

// TestContainerStoppedDropsTheResult: a probe that failed because its
// container stopped (Start or Wait wraps ErrContainerStopped) is no result:
// nothing is notified, the streak does not grow, and the container's next
// probe comes as a first one.
func TestContainerStoppedDropsTheResult(t *testing.T) {
	cfg := healthcheck.Config{Test: []string{"CMD-SHELL", "check"}, Interval: 10 * time.Second,
		Timeout: 3 * time.Second, Retries: 1}
	stopped := fmt.Errorf("exec: container c1 is not running: %w", healthcheck.ErrContainerStopped)
	for _, tc := range []struct {
		name string
		b    behaviour
	}{
		{"start", behaviour{err: stopped}},
		{"wait", behaviour{waitErr: stopped}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			h := newHarness(t, func(string) behaviour {
				if n.Add(1) == 1 {
					return tc.b
				}
				return behaviour{}
			})
			const id = "c1"
			if err := h.s.Add(id, cfg, nil); err != nil {
				t.Fatal(err)
			}
			at := t0.Add(healthcheck.FirstDelay(id, cfg))
			h.advanceTo(at)
			if tc.b.waitErr != nil {
				recv(t, h.start("the probe").waited, "the probe to be waited")
			}
			// The next probe is a first one again: had the dropped one
			// been counted, its notification would come first.
			next := at.Add(healthcheck.FirstDelay(id, cfg))
			h.advanceTo(next)
			if p := h.start("the next probe"); !p.at.Equal(next) {
				t.Fatalf("next probe at %v, want %v", p.at.Sub(t0), next.Sub(t0))
			}
			got := h.note("the next probe's result")
			if got.st.Status != healthcheck.StatusHealthy || got.st.FailingStreak != 0 || len(got.st.Log) != 1 {
				t.Fatalf("after a dropped probe and a success: status %q, streak %d, %d log entries; want healthy, 0, 1",
					got.st.Status, got.st.FailingStreak, len(got.st.Log))
			}
		})
	}
}

// TestProbeDueBeforeTheLoopsTimer: the loop is woken only when a probe is
// due before the timer it sleeps on; one that is, is probed on time.
func TestProbeDueBeforeTheLoopsTimer(t *testing.T) {
	h := newHarness(t, func(string) behaviour { return behaviour{hang: true} })
	slow := quick
	slow.Interval, slow.StartInterval = time.Hour, time.Hour
	nearAt := t0.Add(healthcheck.FirstDelay("near", quick))
	farAt := t0.Add(healthcheck.FirstDelay("far", slow))
	if !farAt.After(nearAt.Add(3 * quick.Interval)) {
		t.Fatalf("far's first probe at %v is not well after near's at %v: pick other ids", farAt.Sub(t0), nearAt.Sub(t0))
	}
	if err := h.s.Add("far", slow, nil); err != nil {
		t.Fatal(err)
	}
	if err := h.s.Add("near", quick, nil); err != nil {
		t.Fatal(err)
	}
	at := nearAt
	for i := 0; i < 3; i++ {
		// While near's probe runs the loop sleeps until far's; near's
		// next, due before that, must wake it.
		h.advanceTo(at)
		p := h.start("near probe")
		if p.id != "near" || !p.at.Equal(at) {
			t.Fatalf("probe %d: %s at %v, want near at %v", i, p.id, p.at.Sub(t0), at.Sub(t0))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := h.clock.WaitForTimer(ctx, farAt)
		cancel()
		if err != nil {
			t.Fatalf("while near's probe runs the loop sleeps until %v, want far's %v", h.clock.Deadlines(), farAt.Sub(t0))
		}
		p.finish(0)
		h.note("near result") // healthy: the next is an Interval later
		at = at.Add(quick.Interval)
	}
}
