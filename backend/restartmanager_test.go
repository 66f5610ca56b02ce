package backend

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/healthcheck/healthchecktest"
)

func TestParseRestartPolicy(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    RestartPolicy
		wantErr bool
		str     string
	}{
		{in: "", want: RestartPolicy{Name: "no"}, str: "no"},
		{in: "no", want: RestartPolicy{Name: "no"}, str: "no"},
		{in: "always", want: RestartPolicy{Name: "always"}, str: "always"},
		{in: "unless-stopped", want: RestartPolicy{Name: "unless-stopped"}, str: "unless-stopped"},
		{in: "on-failure", want: RestartPolicy{Name: "on-failure"}, str: "on-failure"},
		{in: "on-failure:0", want: RestartPolicy{Name: "on-failure"}, str: "on-failure"},
		{in: "on-failure:5", want: RestartPolicy{Name: "on-failure", MaximumRetryCount: 5}, str: "on-failure:5"},
		{in: "on-failure:-1", wantErr: true},
		{in: "on-failure:x", wantErr: true},
		{in: "on-failure:", wantErr: true},
		{in: "always:3", wantErr: true},
		{in: "no:1", wantErr: true},
		{in: "sometimes", wantErr: true},
		{in: "Always", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseRestartPolicy(tc.in)
			if tc.wantErr {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("ParseRestartPolicy(%q) = %v, %v; want InvalidArgument", tc.in, got, err)
				}
				for _, form := range []string{"no", "always", "on-failure[:N]", "unless-stopped"} {
					if !contains(err.Error(), form) {
						t.Errorf("error %q does not name the valid form %q", err, form)
					}
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseRestartPolicy(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
			if s := got.String(); s != tc.str {
				t.Errorf("String() = %q, want %q", s, tc.str)
			}
			if again, err := ParseRestartPolicy(got.String()); err != nil || again != got {
				t.Errorf("round trip of %q: %+v, %v", got.String(), again, err)
			}
		})
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestShouldRestart(t *testing.T) {
	no, always, unless := RestartPolicy{Name: "no"}, RestartPolicy{Name: "always"}, RestartPolicy{Name: "unless-stopped"}
	onf := RestartPolicy{Name: "on-failure"}
	onf2 := RestartPolicy{Name: "on-failure", MaximumRetryCount: 2}
	for _, tc := range []struct {
		name string
		p    RestartPolicy
		x    exitInfo
		want bool
	}{
		{"no policy", no, exitInfo{exitCode: 1}, false},
		{"zero policy", RestartPolicy{}, exitInfo{exitCode: 1}, false},
		{"always on success", always, exitInfo{}, true},
		{"always on failure", always, exitInfo{exitCode: 3}, true},
		{"always manual", always, exitInfo{exitCode: 143, manual: true}, false},
		{"unless-stopped", unless, exitInfo{}, true},
		{"unless-stopped manual", unless, exitInfo{manual: true}, false},
		{"on-failure success", onf, exitInfo{}, false},
		{"on-failure failure", onf, exitInfo{exitCode: 1, restartCount: 100}, true},
		{"on-failure oom counts as failure", onf, exitInfo{oomKilled: true}, true},
		{"on-failure:2 first", onf2, exitInfo{exitCode: 3}, true},
		{"on-failure:2 second", onf2, exitInfo{exitCode: 3, restartCount: 1}, true},
		{"on-failure:2 exhausted", onf2, exitInfo{exitCode: 3, restartCount: 2}, false},
		{"on-failure manual", onf, exitInfo{exitCode: 137, manual: true}, false},
		{"unhealthy under no", no, exitInfo{exitCode: 137, unhealthy: true}, true},
		{"unhealthy counts toward on-failure:2", onf2, exitInfo{exitCode: 137, unhealthy: true, restartCount: 2}, false},
		{"unhealthy but manual", always, exitInfo{unhealthy: true, manual: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := shouldRestart(tc.p, tc.x); got != tc.want {
				t.Errorf("shouldRestart(%v, %+v) = %v, want %v", tc.p, tc.x, got, tc.want)
			}
		})
	}
}

func TestBackoffNext(t *testing.T) {
	def := Backoff{}
	for _, tc := range []struct {
		name      string
		b         Backoff
		prev, ran time.Duration
		rnd       float64
		base      time.Duration
		wait      time.Duration
	}{
		{"first", def, 0, 0, 0.5, 100 * time.Millisecond, 100 * time.Millisecond},
		{"doubles", def, 100 * time.Millisecond, time.Second, 0.5, 200 * time.Millisecond, 200 * time.Millisecond},
		{"capped", def, 50 * time.Second, 0, 0.5, time.Minute, time.Minute},
		{"reset after a long run", def, 40 * time.Second, 10 * time.Second, 0.5, 100 * time.Millisecond, 100 * time.Millisecond},
		{"not reset just before", def, 400 * time.Millisecond, 10*time.Second - 1, 0.5, 800 * time.Millisecond, 800 * time.Millisecond},
		{"custom", Backoff{Initial: time.Second, Multiplier: 3, Max: 5 * time.Second, ResetAfter: time.Minute}, 3 * time.Second, 0, 0, 5 * time.Second, 5 * time.Second},
		{"jitter low", Backoff{Jitter: 0.5}, 100 * time.Millisecond, 0, 0, 200 * time.Millisecond, 100 * time.Millisecond},
		{"jitter high", Backoff{Jitter: 0.5}, 100 * time.Millisecond, 0, 1, 200 * time.Millisecond, 300 * time.Millisecond},
		{"jitter clamped", Backoff{Jitter: 7}, 0, 0, 0, 100 * time.Millisecond, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, wait := tc.b.next(tc.prev, tc.ran, tc.rnd)
			if base != tc.base || wait != tc.wait {
				t.Errorf("next(%v, %v, %v) = %v, %v; want %v, %v", tc.prev, tc.ran, tc.rnd, base, wait, tc.base, tc.wait)
			}
		})
	}
}

func TestTransition(t *testing.T) {
	for _, tc := range []struct {
		from, to State
		ok       bool
	}{
		{StateCreated, StateRunning, true},
		{StateCreated, StatePaused, false},
		{StateRunning, StatePaused, true},
		{StateRunning, StateRestarting, true},
		{StateRunning, StateRemoving, false},
		{StatePaused, StateRunning, true},
		{StateExited, StatePaused, false},
		{StateExited, StateRunning, true},
		{StateExited, StateRemoving, true},
		{StateRestarting, StateRestarting, true},
		{StateRestarting, StatePaused, false},
		{StateDead, StateRunning, false},
		{StateRemoving, StateRunning, false},
		{StateRemoving, StateDead, true},
	} {
		t.Run(string(tc.from)+"->"+string(tc.to), func(t *testing.T) {
			c := &Container{ID: "x", State: tc.from}
			err := transition(c, tc.to)
			if tc.ok {
				if err != nil || c.State != tc.to {
					t.Fatalf("transition: %v, state %s", err, c.State)
				}
				return
			}
			if !errdefs.IsFailedPrecondition(err) || c.State != tc.from {
				t.Fatalf("transition = %v (state %s); want FailedPrecondition and unchanged", err, c.State)
			}
		})
	}
}

func TestNormalizeImageRef(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                          "docker.io/library/busybox:latest",
		"busybox:1.36":                     "docker.io/library/busybox:1.36",
		"docker.io/library/busybox:latest": "docker.io/library/busybox:latest",
		"example.com/team/app":             "example.com/team/app:latest",
	} {
		if got, err := NormalizeImageRef(in); err != nil || got != want {
			t.Errorf("NormalizeImageRef(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := NormalizeImageRef("Not Valid"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("NormalizeImageRef of a bad reference: %v, want InvalidArgument", err)
	}
}

// managerHarness runs a restartManager on a fake clock; fired receives the
// generation of every restart whose timer fired.
type managerHarness struct {
	m     restartManager
	clock *healthchecktest.FakeClock
	done  chan struct{}
	fired chan uint64
	wg    sync.WaitGroup
}

func newManagerHarness(t *testing.T) *managerHarness {
	h := &managerHarness{clock: healthchecktestClock(), done: make(chan struct{}), fired: make(chan uint64, 10)}
	t.Cleanup(h.wg.Wait)
	return h
}

func (h *managerHarness) spawn(f func()) bool {
	h.wg.Go(f)
	return true
}

func (h *managerHarness) arm(t *testing.T, wait time.Duration) uint64 {
	t.Helper()
	if !h.m.arm(h.clock, wait, h.done, h.spawn, func(gen uint64) { h.fired <- gen }) {
		t.Fatal("arm refused")
	}
	return h.m.gen
}

// advance waits for a timer due at now+d, then moves the clock there.
func (h *managerHarness) advance(t *testing.T, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	when := h.clock.Now().Add(d)
	if err := h.clock.WaitForTimer(ctx, when); err != nil {
		t.Fatalf("no timer armed for %v (have %v): %v", when, h.clock.Deadlines(), err)
	}
	h.clock.Advance(d)
}

func TestRestartManagerFiresOnceAfterTheWait(t *testing.T) {
	h := newManagerHarness(t)
	gen := h.arm(t, 5*time.Second)
	h.clock.Advance(4 * time.Second)
	select {
	case g := <-h.fired:
		t.Fatalf("restart %d fired after 4s of a 5s wait", g)
	default:
	}
	h.advance(t, time.Second)
	if got := <-h.fired; got != gen {
		t.Fatalf("fired generation %d, want %d", got, gen)
	}
	h.wg.Wait()
	if !h.m.take(gen) {
		t.Fatal("take of the restart that fired: false, want true")
	}
	if len(h.fired) != 0 || len(h.clock.Deadlines()) != 0 {
		t.Fatalf("after the restart: %d more fired, timers %v; want none", len(h.fired), h.clock.Deadlines())
	}
}

func TestRestartManagerCancel(t *testing.T) {
	h := newManagerHarness(t)
	gen := h.arm(t, 5*time.Second)
	h.m.cancel()
	h.wg.Wait() // the waiting goroutine ends with the cancel
	if d := h.clock.Deadlines(); len(d) != 0 {
		t.Fatalf("timers after cancel: %v, want none", d)
	}
	h.clock.Advance(time.Minute)
	if len(h.fired) != 0 {
		t.Fatal("a cancelled restart fired")
	}
	if h.m.take(gen) {
		t.Fatal("take of a cancelled restart: true, want false")
	}
}

// A restart whose timer fired but that was cancelled before it ran (a Stop
// holding the container) must not run: its generation is stale.
func TestRestartManagerCancelAfterFire(t *testing.T) {
	h := newManagerHarness(t)
	gen := h.arm(t, time.Second)
	h.advance(t, time.Second)
	<-h.fired
	h.m.cancel()
	if h.m.take(gen) {
		t.Fatal("take of a restart cancelled after its timer fired: true, want false")
	}
}

func TestRestartManagerArmReplaces(t *testing.T) {
	h := newManagerHarness(t)
	first := h.arm(t, 5*time.Second)
	second := h.arm(t, 10*time.Second)
	if first == second {
		t.Fatalf("both restarts have generation %d", first)
	}
	h.advance(t, 10*time.Second)
	if got := <-h.fired; got != second {
		t.Fatalf("fired generation %d, want the second, %d", got, second)
	}
	h.wg.Wait()
	if len(h.fired) != 0 {
		t.Fatal("the replaced restart fired too")
	}
	if h.m.take(first) || !h.m.take(second) {
		t.Fatal("take: want the replaced restart refused and the second claimed")
	}
}

func TestRestartManagerStopsWithItsOwner(t *testing.T) {
	h := newManagerHarness(t)
	h.arm(t, 5*time.Second)
	close(h.done)
	h.wg.Wait()
	h.clock.Advance(time.Minute)
	if len(h.fired) != 0 {
		t.Fatal("a restart fired after its owner stopped")
	}
}

func TestRestartManagerSpawnRefused(t *testing.T) {
	h := newManagerHarness(t)
	if h.m.arm(h.clock, time.Second, h.done, func(func()) bool { return false }, func(uint64) { t.Error("fired") }) {
		t.Fatal("arm with a refusing spawn: true, want false")
	}
	if d := h.clock.Deadlines(); len(d) != 0 {
		t.Fatalf("timers after a refused arm: %v, want none", d)
	}
	if h.m.stop != nil {
		t.Fatal("a refused arm left a restart pending")
	}
}
