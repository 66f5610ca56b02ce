package healthcheck

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

func TestValidate(t *testing.T) {
	cmd := []string{"CMD", "true"}
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string // substring; empty means valid
	}{
		{"none", Config{Test: []string{"NONE"}}, ""},
		{"cmd", Config{Test: cmd}, ""},
		{"cmd-shell", Config{Test: []string{"CMD-SHELL", "curl -f localhost || exit 1"}}, ""},
		{"all set", Config{Test: cmd, Interval: time.Second, Timeout: time.Millisecond, StartPeriod: time.Minute, StartInterval: 2 * time.Second, Retries: 1, OnUnhealthy: ActionRestart}, ""},
		{"empty test", Config{}, "empty test"},
		{"none with args", Config{Test: []string{"NONE", "x"}}, "NONE takes no arguments"},
		{"cmd without argv", Config{Test: []string{"CMD"}}, "CMD needs a command"},
		{"cmd empty argv0", Config{Test: []string{"CMD", ""}}, "CMD needs a command"},
		{"cmd-shell empty", Config{Test: []string{"CMD-SHELL", "  "}}, "CMD-SHELL needs exactly one"},
		{"cmd-shell two strings", Config{Test: []string{"CMD-SHELL", "a", "b"}}, "CMD-SHELL needs exactly one"},
		{"unknown kind", Config{Test: []string{"SHELL", "true"}}, `unknown test kind "SHELL"`},
		{"negative interval", Config{Test: cmd, Interval: -time.Second}, "interval -1s: must not be negative"},
		{"tiny interval", Config{Test: cmd, Interval: time.Microsecond}, "interval 1µs: must be at least 1ms"},
		{"negative timeout", Config{Test: cmd, Timeout: -1}, "timeout -1ns: must not be negative"},
		{"tiny timeout", Config{Test: cmd, Timeout: 999 * time.Microsecond}, "timeout 999µs: must be at least 1ms"},
		{"negative start period", Config{Test: cmd, StartPeriod: -time.Second}, "start period -1s"},
		{"tiny start period", Config{Test: cmd, StartPeriod: time.Nanosecond}, "start period 1ns: must be at least 1ms"},
		{"tiny start interval", Config{Test: cmd, StartInterval: time.Nanosecond}, "start interval 1ns: must be at least 1ms"},
		{"negative retries", Config{Test: cmd, Retries: -1}, "retries -1"},
		{"bad action", Config{Test: cmd, OnUnhealthy: "explode"}, `invalid on-unhealthy action "explode"`},
		{"unparsed action", Config{Test: cmd, OnUnhealthy: "KILL"}, `invalid on-unhealthy action "KILL"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want error containing %q", tc.wantErr)
			}
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("Validate() = %v, want ErrInvalidArgument", err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Validate() = %q, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestArgv(t *testing.T) {
	for _, tc := range []struct {
		test   []string
		want   []string
		wantOK bool
	}{
		{[]string{"NONE"}, nil, false},
		{nil, nil, false},
		{[]string{"CMD", "/bin/check", "-v"}, []string{"/bin/check", "-v"}, true},
		{[]string{"CMD-SHELL", "exit 1"}, []string{"/bin/sh", "-c", "exit 1"}, true},
		{[]string{"BOGUS", "x"}, nil, false},
	} {
		got, ok := Config{Test: tc.test}.Argv()
		if ok != tc.wantOK || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Argv(%q) = %q, %v; want %q, %v", tc.test, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestParseAction(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Action
		wantErr bool
	}{
		{"", ActionNone, false},
		{"none", ActionNone, false},
		{"kill", ActionKill, false},
		{" Restart ", ActionRestart, false},
		{"stop", ActionStop, false},
		{"reboot", "", true},
	} {
		got, err := ParseAction(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("ParseAction(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err != nil && !errdefs.IsInvalidArgument(err) {
			t.Errorf("ParseAction(%q) error %v is not ErrInvalidArgument", tc.in, err)
		}
	}
}

func TestWithDefaults(t *testing.T) {
	got := Config{Test: []string{"CMD", "true"}}.WithDefaults()
	want := Config{Test: []string{"CMD", "true"}, Interval: 30 * time.Second, Timeout: 30 * time.Second,
		StartInterval: 5 * time.Second, Retries: 3, OnUnhealthy: ActionNone}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("WithDefaults() = %+v, want %+v", got, want)
	}
	set := Config{Test: []string{"CMD", "true"}, Interval: time.Second, Timeout: 2 * time.Second,
		StartPeriod: 3 * time.Second, StartInterval: 4 * time.Second, Retries: 5, OnUnhealthy: ActionKill}
	if got := set.WithDefaults(); !reflect.DeepEqual(got, set) {
		t.Errorf("WithDefaults() changed set fields: %+v", got)
	}
}

func TestStateJSONRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	st := State{Status: StatusUnhealthy, FailingStreak: 4, Log: []Result{
		{Start: t0, End: t0.Add(time.Second), ExitCode: -1, Output: "health check timed out after 1s"},
	}}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var got State
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Errorf("round trip = %+v, want %+v (json %s)", got, st, b)
	}
}
