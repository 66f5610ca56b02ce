package healthcheck

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestApply(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := Config{Test: []string{"CMD", "x"}, Retries: 2, StartPeriod: 10 * time.Second}.WithDefaults()
	type probe struct {
		at         time.Duration // since startedAt
		code       int
		wantStatus string
		wantStreak int
		wantChange bool
	}
	for _, tc := range []struct {
		name    string
		initial State
		probes  []probe
	}{
		{"success while starting", State{}, []probe{
			{1 * time.Second, 0, StatusHealthy, 0, true},
			{2 * time.Second, 0, StatusHealthy, 0, false},
		}},
		{"failures in start period do not count", State{Status: StatusStarting}, []probe{
			{1 * time.Second, 1, StatusStarting, 0, false},
			{5 * time.Second, 2, StatusStarting, 0, false},
			{9 * time.Second, 1, StatusStarting, 0, false},
			{10 * time.Second, 1, StatusStarting, 1, false},
			{11 * time.Second, 1, StatusUnhealthy, 2, true},
		}},
		{"exit codes 1, 2, other and -1 all fail", State{Status: StatusStarting}, []probe{
			{20 * time.Second, 2, StatusStarting, 1, false},
			{21 * time.Second, 137, StatusUnhealthy, 2, true},
			{22 * time.Second, -1, StatusUnhealthy, 3, false},
			{23 * time.Second, 0, StatusHealthy, 0, true},
			{24 * time.Second, 1, StatusHealthy, 1, false},
			{25 * time.Second, 0, StatusHealthy, 0, false},
		}},
		{"healthy failures count inside start period", State{Status: StatusHealthy}, []probe{
			{1 * time.Second, 1, StatusHealthy, 1, false},
			{2 * time.Second, 1, StatusUnhealthy, 2, true},
		}},
		{"resumed streak continues", State{Status: StatusHealthy, FailingStreak: 1}, []probe{
			{30 * time.Second, 1, StatusUnhealthy, 2, true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.initial
			for i, p := range tc.probes {
				r := Result{Start: t0.Add(p.at), End: t0.Add(p.at), ExitCode: p.code}
				changed := st.apply(r, cfg, t0, 3)
				if st.Status != p.wantStatus || st.FailingStreak != p.wantStreak || changed != p.wantChange {
					t.Fatalf("probe %d (exit %d at %v): status %q streak %d changed %v; want %q %d %v",
						i, p.code, p.at, st.Status, st.FailingStreak, changed, p.wantStatus, p.wantStreak, p.wantChange)
				}
				if want := min(i+1, 3); len(st.Log) != want || st.Log[len(st.Log)-1] != r {
					t.Fatalf("probe %d: log %+v, want %d entries ending with %+v", i, st.Log, want, r)
				}
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	log := []Result{{ExitCode: 1}, {ExitCode: 2}, {ExitCode: 3}}
	for _, tc := range []struct {
		in   State
		want State
	}{
		{State{}, State{Status: StatusStarting}},
		{State{Status: "bogus", FailingStreak: -2}, State{Status: StatusStarting}},
		{State{Status: StatusUnhealthy, FailingStreak: 7, Log: log}, State{Status: StatusUnhealthy, FailingStreak: 7, Log: log[1:]}},
	} {
		if got := tc.in.normalize(2); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("normalize(%+v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestCappedBuffer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limit  int
		writes []string
		want   string
	}{
		{"empty", 8, nil, ""},
		{"under", 8, []string{"abc", "de"}, "abcde"},
		{"exact", 4, []string{"ab", "cd"}, "abcd"},
		{"over in one write", 4, []string{"abcdefgh"}, "abcd\n[output truncated: 4 bytes omitted]"},
		{"over across writes", 4, []string{"abc", "def", "ghi"}, "abcd\n[output truncated: 5 bytes omitted]"},
		{"zero limit", 0, []string{"xyz"}, "\n[output truncated: 3 bytes omitted]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newCappedBuffer(tc.limit)
			for _, w := range tc.writes {
				if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v; want %d, nil", w, n, err, len(w))
				}
			}
			if got := b.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCappedBufferConcurrent(t *testing.T) {
	b := newCappedBuffer(100)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				b.Write([]byte("0123456789"))
			}
		}()
	}
	wg.Wait()
	want := strings.Repeat("0123456789", 10) + fmt.Sprintf("\n[output truncated: %d bytes omitted]", 8*100*10-100)
	if got := b.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
