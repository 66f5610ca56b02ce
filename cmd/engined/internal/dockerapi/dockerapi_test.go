package dockerapi

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	"github.com/tendhq/tend/backend"
)

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"1.41", "1.41", 0}, {"1.9", "1.41", -1}, {"1.56", "1.41", 1}, {"2.0", "1.56", 1}} {
		if got := compareVersions(c.a, c.b); got != c.want {
			t.Errorf("compareVersions(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestToCreateOptions(t *testing.T) {
	pids := int64(50)
	port, _ := network.PortFrom(80, network.TCP)
	req := &container.CreateRequest{
		Config: &container.Config{Image: "busybox", Entrypoint: []string{"sh", "-c"}, Cmd: []string{"exit 3"},
			Healthcheck: &container.HealthConfig{Test: []string{"CMD-SHELL", "true"}, Interval: time.Second, Retries: 2},
			Volumes:     map[string]struct{}{"/data": {}}},
		HostConfig: &container.HostConfig{
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 3},
			Resources:     container.Resources{Memory: 64 << 20, CPUQuota: 50000, PidsLimit: &pids},
			NetworkMode:   "default",
			PortBindings:  network.PortMap{port: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "8080"}}},
		},
	}
	o, err := toCreateOptions("/web", req)
	if err != nil {
		t.Fatal(err)
	}
	if o.Name != "web" || strings.Join(o.Entrypoint, " ") != "sh -c" || strings.Join(o.Cmd, " ") != "exit 3" || o.Restart.Name != "on-failure" || o.Restart.MaximumRetryCount != 3 ||
		o.Resources.MemoryBytes != 64<<20 || o.Resources.CPUs != 0.5 || o.Resources.PidsLimit != 50 ||
		o.Health == nil || o.Health.Interval != time.Second || o.NetworkMode != "bridge" ||
		len(o.Publish) != 1 || o.Publish[0].HostPort != 8080 || o.Publish[0].HostIP != "127.0.0.1" ||
		len(o.Binds) != 1 || o.Binds[0] != "/data" {
		t.Errorf("toCreateOptions: %+v", o)
	}

	for _, c := range []struct {
		name string
		req  container.CreateRequest
		want string
	}{
		{"no config", container.CreateRequest{}, "config cannot be empty"},
		{"domainname", container.CreateRequest{Config: &container.Config{Image: "b", Domainname: "example.com"}}, "Config.Domainname"},
		{"namespaces", container.CreateRequest{Config: &container.Config{Image: "b"}, HostConfig: &container.HostConfig{PidMode: "host", UTSMode: "host"}}, "HostConfig.PidMode, HostConfig.UTSMode"},
		{"log driver", container.CreateRequest{Config: &container.Config{Image: "b"}, HostConfig: &container.HostConfig{LogConfig: container.LogConfig{Type: "syslog"}}}, "HostConfig.LogConfig.Type syslog"},
		{"retries without on-failure", container.CreateRequest{Config: &container.Config{Image: "b"}, HostConfig: &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "always", MaximumRetryCount: 2}}}, "only be used with 'on-failure'"},
		{"negative memory", container.CreateRequest{Config: &container.Config{Image: "b"}, HostConfig: &container.HostConfig{Resources: container.Resources{Memory: -1}}}, "cannot be negative"},
		{"port range", container.CreateRequest{Config: &container.Config{Image: "b"}, HostConfig: &container.HostConfig{PortBindings: network.PortMap{port: {{HostPort: "8000-8010"}}}}}, "ranges are not supported"},
	} {
		_, err := toCreateOptions("", &c.req)
		if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an invalid argument containing %q", c.name, err, c.want)
		}
	}
}

func TestFilters(t *testing.T) {
	f, err := parseFilters(`{"status":{"running":true},"label":{"a=b":true}}`)
	if err != nil || !f.match("status", "running") || f.match("status", "exited") || !f.match("name", "any") {
		t.Fatalf("new form: %v, %v", f, err)
	}
	f, err = parseFilters(`{"status":["exited"]}`)
	if err != nil || !f.match("status", "exited") {
		t.Fatalf("old form: %v, %v", f, err)
	}
	if _, err := parseFilters(`{bad`); !errdefs.IsInvalidArgument(err) {
		t.Errorf("bad filters: %v", err)
	}
	if err := (filters{"volume": {"x": true}}).only("status"); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "volume") {
		t.Errorf("only: %v", err)
	}
}

func TestEventNames(t *testing.T) {
	at := time.Unix(100, 5)
	m := toMessage(backend.Event{Time: at, Type: "health_status", ContainerID: "abc", Name: "web", Attributes: map[string]string{"health_status": "healthy"}}, "busybox:latest")
	if m.Action != events.ActionHealthStatusHealthy || m.Type != events.ContainerEventType || m.Actor.Attributes["name"] != "web" || m.TimeNano != at.UnixNano() {
		t.Errorf("health event: %+v", m)
	}
	m = toMessage(backend.Event{Type: "exec_die", ContainerID: "abc", Name: "web", Attributes: map[string]string{"exit_code": "7", "exec_id": "x"}}, "")
	if m.Action != events.ActionExecDie || m.Actor.Attributes["exitCode"] != "7" || m.Actor.Attributes["execID"] != "x" {
		t.Errorf("exec_die event: %+v", m)
	}
	f, _ := parseFilters(`{"event":{"health_status":true},"container":{"web":true}}`)
	keep, err := eventFilter(f)
	if err != nil {
		t.Fatal(err)
	}
	if !keep(toMessage(backend.Event{Type: "health_status", ContainerID: "abc", Name: "web", Attributes: map[string]string{"health_status": "healthy"}}, "")) {
		t.Error("event=health_status does not keep health_status: healthy")
	}
	if keep(toMessage(backend.Event{Type: "die", ContainerID: "abc", Name: "web"}, "")) {
		t.Error("event=health_status keeps die")
	}
}
