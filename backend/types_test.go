package backend

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/moby/moby/api/types/mount"

	"github.com/tendhq/tend/healthcheck"
	"github.com/tendhq/tend/network"
)

// TestRecordNamesOneStyle: every key of tend's own JSON of a container
// (the record, inspect --raw) is snake_case; only free-form maps (labels,
// options) hold other keys.
func TestRecordNamesOneStyle(t *testing.T) {
	retries := 3
	c := Container{
		ID: "id", Name: "web", Created: time.Now(), State: StateRunning, Pid: 1, RestartCount: 1,
		Config: CreateOptions{
			Image: "busybox", Labels: map[string]string{"App.Name": "x"}, Env: []string{"A=b"},
			Health:    &healthcheck.Config{Test: []string{"CMD", "true"}, Interval: time.Second, Retries: retries},
			Publish:   []network.PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}},
			Mounts:    Mounts{{Type: mount.TypeBind, Source: "/a", Target: "/b", ReadOnly: true, BindOptions: &mount.BindOptions{Propagation: mount.PropagationRPrivate}, VolumeOptions: &mount.VolumeOptions{Labels: map[string]string{"K": "v"}, DriverConfig: &mount.Driver{Name: "local", Options: map[string]string{"O": "p"}}}, TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1}}},
			Ulimits:   []Ulimit{{Name: "nofile", Soft: 1, Hard: 2}},
			Tmpfs:     map[string]string{"/run": "size=1m"},
			Resources: Resources{MemoryBytes: 1},
			LogOpts:   map[string]string{"labels": "App.Name"},
		},
		Health:  &healthcheck.State{Status: "healthy", Log: []healthcheck.Result{{ExitCode: 0, Output: "ok"}}},
		Network: &NetworkSettings{Mode: "bridge", Attachment: &network.Attachment{Network: "bridge", IPAddress: "10.0.0.2", Ports: []network.PortMapping{{HostPort: 1, ContainerPort: 2}}}},
		Mounts:  MountPoints{{Type: mount.TypeVolume, Name: "v", Destination: "/v", RW: true}},
	}
	b, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	snake := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	freeForm := map[string]bool{"labels": true, "tmpfs": true, "options": true, "log_opts": true}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if !snake.MatchString(k) {
					t.Errorf("%s.%s is not snake_case", path, k)
				}
				if !freeForm[k] {
					walk(path+"."+k, e)
				}
			}
		case []any:
			for _, e := range x {
				walk(path+"[]", e)
			}
		}
	}
	walk("", v)
}
