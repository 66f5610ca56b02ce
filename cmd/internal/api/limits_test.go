package api

import (
	"math"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/healthcheck"
)

func TestParseSignal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want syscall.Signal
		ok   bool
	}{
		{"", syscall.SIGKILL, true},
		{"KILL", syscall.SIGKILL, true},
		{"sigterm", syscall.SIGTERM, true},
		{"hup", syscall.SIGHUP, true},
		{"9", syscall.SIGKILL, true},
		{"64", 64, true},
		{"RTMIN+3", 37, true},
		{"0", 0, false},
		{"65", 0, false},
		{"-9", 0, false},
		{"99999999999999999999", 0, false},
		{"NOPE", 0, false},
	} {
		got, err := ParseSignal(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseSignal(%q) = %v, %v", tc.in, got, err)
		}
		if err != nil && !errdefs.IsInvalidArgument(err) {
			t.Errorf("ParseSignal(%q): %v is not invalid argument", tc.in, err)
		}
	}
}

func TestCheckCreate(t *testing.T) {
	// The ranges of numbers are backend's checks, tested there
	// (TestCreateChecksRanges); one case each shows CheckCreate applies them.
	for _, tc := range []struct {
		name string
		o    CreateOptions
		msg  string
	}{
		{"fine", CreateOptions{Name: "web", Image: "busybox", Cmd: []string{"true"}, Labels: map[string]string{"a": ""}}, ""},
		{"docker name form", CreateOptions{Name: "/web"}, ""},
		{"empty label key", CreateOptions{Labels: map[string]string{"": "v"}}, "empty key"},
		{"empty command", CreateOptions{Cmd: []string{""}}, "first word is empty"},
		{"dot name", CreateOptions{Name: ".."}, "invalid container name"},
		{"long name", CreateOptions{Name: strings.Repeat("a", 10000)}, "at most 128"},
		{"memory", CreateOptions{Resources: Resources{MemoryBytes: 4096}}, "minimum is 6MiB"},
		{"retries", CreateOptions{Restart: RestartPolicy{Name: "on-failure", MaximumRetryCount: -1}}, "maximum retry count"},
		{"health", CreateOptions{Health: &healthcheck.Config{Test: []string{healthcheck.TestCmdShell, "true"}, Interval: -1}}, "health check interval"},
	} {
		err := CheckCreate(&tc.o, 4)
		if tc.msg == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want invalid argument saying %q", tc.name, err, tc.msg)
		}
		if len(err.Error()) > 512 {
			t.Errorf("%s: message of %d bytes", tc.name, len(err.Error()))
		}
	}
}

func TestParseNumbers(t *testing.T) {
	if d, err := ParseTimeout("30"); err != nil || d != 30*time.Second {
		t.Errorf("ParseTimeout(30) = %v, %v", d, err)
	}
	if d, err := ParseTimeout("2147483647"); err != nil || d <= 0 {
		t.Errorf("ParseTimeout(max) = %v, %v: want a positive duration", d, err)
	}
	for _, v := range []string{"-1", "2147483648", "9223372036854775807", "99999999999999999999", "1.5", "x", ""} {
		if _, err := ParseTimeout(v); !errdefs.IsInvalidArgument(err) {
			t.Errorf("ParseTimeout(%q): %v, want invalid argument", v, err)
		}
	}
	for v, want := range map[string]int{"": -1, "all": -1, "0": 0, "25": 25} {
		if n, err := ParseTail(v); err != nil || n != want {
			t.Errorf("ParseTail(%q) = %d, %v", v, n, err)
		}
	}
	for _, v := range []string{"-1", "2147483648", "1e3", "x"} {
		if _, err := ParseTail(v); !errdefs.IsInvalidArgument(err) {
			t.Errorf("ParseTail(%q): %v, want invalid argument", v, err)
		}
	}
	if tm, err := ParseUnixSeconds("1700000000.5"); err != nil || tm.Unix() != 1700000000 || tm.Nanosecond() != 5e8 {
		t.Errorf("ParseUnixSeconds = %v, %v", tm, err)
	}
	for _, v := range []string{"-1", "NaN", "Inf", "1e300", "253402300800"} {
		if _, err := ParseUnixSeconds(v); !errdefs.IsInvalidArgument(err) {
			t.Errorf("ParseUnixSeconds(%q): %v, want invalid argument", v, err)
		}
	}
	for _, s := range [][2]uint32{{0, 0}, {80, 24}, {65535, 65535}} {
		if err := CheckTerminalSize(s[0], s[1]); err != nil {
			t.Errorf("CheckTerminalSize(%v): %v", s, err)
		}
	}
	for _, s := range [][2]uint32{{0, 24}, {80, 0}, {65536, 24}, {80, math.MaxUint32}} {
		if err := CheckTerminalSize(s[0], s[1]); !errdefs.IsInvalidArgument(err) {
			t.Errorf("CheckTerminalSize(%v): %v, want invalid argument", s, err)
		}
	}
}

func TestCheckPathAndNames(t *testing.T) {
	for _, p := range []string{"/v1/containers/C", "/v1/images/docker.io/library/busybox:latest", "/v1/containers/a.b"} {
		if err := CheckPath(p); err != nil {
			t.Errorf("CheckPath(%q): %v", p, err)
		}
	}
	for _, p := range []string{"", "v1", "/v1//x", "/v1/x/", "/v1/.", "/v1/..", "/v1/%2e%2E", "/v1/a%2fb", "/v1/a%2Fb", "/v1/a%5cb", "/v1/%zz"} {
		if err := CheckPath(p); !errdefs.IsInvalidArgument(err) {
			t.Errorf("CheckPath(%q): %v, want invalid argument", p, err)
		}
	}
	for _, n := range []string{".", "..", "", "-a", "_a", "a/b", "a b", strings.Repeat("a", 129)} {
		if err := ValidateName("container reference", n); !errdefs.IsInvalidArgument(err) {
			t.Errorf("ValidateName(%q): %v, want invalid argument", n, err)
		}
	}
	if got := Echo(strings.Repeat("x", 1000)); len(got) > MaxEcho+8 {
		t.Errorf("Echo of 1000 bytes is %d bytes", len(got))
	}
	if got := ImagePath("docker.io/library/a b:1"); got != "docker.io/library/a%20b:1" {
		t.Errorf("ImagePath = %q", got)
	}
}
