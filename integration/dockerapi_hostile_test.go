package integration

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// TestDockerAPIHostileInput sends the Docker socket requests no client
// should send: malformed JSON, fields of the wrong type, huge names, ".."
// in ids and names, bad filters, bad parameters. Each must be a 4xx with
// {"message": ...}; the engine keeps serving.
func TestDockerAPIHostileInput(t *testing.T) {
	d, cli := startDockerEngine(t, "dhostile")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f, err := os.Open(engineImage(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lr, err := cli.ImageLoad(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	loaded, _ := io.ReadAll(lr)
	lr.Close()
	if !strings.Contains(string(loaded), "Loaded image") {
		t.Fatalf("image load: %s", loaded)
	}
	cr, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: "target", Config: &container.Config{Image: "busybox:latest", Cmd: []string{"sleep", "1000"}, Tty: true, OpenStdin: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.ContainerRemove(context.Background(), cr.ID, client.ContainerRemoveOptions{Force: true})
	if _, err := cli.ContainerStart(ctx, cr.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	huge := strings.Repeat("a", 5000)
	for _, c := range []struct{ method, path, body string }{
		// bodies
		{"POST", "/containers/create", "{not json"},
		{"POST", "/containers/create", `[]`},
		{"POST", "/containers/create", `null`},
		{"POST", "/containers/create", `{"Image": 5}`},
		{"POST", "/containers/create", `{"Image": "busybox", "Cmd": {"a": 1}}`},
		{"POST", "/containers/create", `{"Image": "busybox", "HostConfig": {"Memory": "lots"}}`},
		{"POST", "/containers/create", `{"Image": "busybox", "HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}`},
		{"POST", "/containers/create", `{"Image": "busybox", "HostConfig": {"PortBindings": {"nope/xyz": [{"HostPort": "x"}]}}}`},
		{"POST", "/containers/create", `{"Image": "busybox", "HostConfig": {"Binds": ["/x:relative"]}}`},
		{"POST", "/containers/create", `{"Image": "busybox", "Healthcheck": {"Test": ["CMD", "true"], "Interval": -5}}`},
		{"POST", "/containers/create", `{"Image": "` + huge + `"}`},
		{"POST", "/containers/create", `{"Image": "../../etc/passwd"}`},
		{"POST", "/containers/create", `{"Image": "busybox", "Env": ["` + strings.Repeat("x", 2<<20) + `"]}`},
		// names and ids
		{"POST", "/containers/create?name=" + huge, `{"Image": "busybox"}`},
		{"POST", "/containers/create?name=..%2F..%2Fetc", `{"Image": "busybox"}`},
		{"POST", "/containers/create?name=a%00b", `{"Image": "busybox"}`},
		{"GET", "/containers/..%2F..%2Fetc/json", ""},
		{"GET", "/containers/%2e%2e/json", ""},
		{"GET", "/containers/" + huge + "/json", ""},
		{"DELETE", "/containers/..", ""},
		{"POST", "/containers/target/rename?name=..%2Fevil", ""},
		{"POST", "/containers/target/rename?name=" + huge, ""},
		{"POST", "/containers/target/rename", ""},
		{"POST", "/exec/..%2F..%2Fx/start", `{}`},
		{"GET", "/exec/" + huge + "/json", ""},
		{"DELETE", "/images/..%2F..%2Fx", ""},
		{"POST", "/images/busybox/tag?repo=UPPERCASE", ""},
		{"POST", "/images/create?fromImage=..%2F..%2Fx", ""},
		{"POST", "/volumes/create", `{"Name": "../x"}`},
		{"POST", "/volumes/create", `{"Name": 5}`},
		{"GET", "/volumes/..%2Fx", ""},
		{"POST", "/networks/create", `{"Name": 5}`},
		{"POST", "/networks/create", `{"Name": "../x"}`},
		// filters
		{"GET", "/containers/json?filters=%7Bbad", ""},
		{"GET", "/containers/json?filters=%5B1%2C2%5D", ""},
		{"GET", "/containers/json?filters=%7B%22nosuchkey%22%3A%5B%22x%22%5D%7D", ""},
		{"GET", "/containers/json?filters=%7B%22status%22%3A%5B%22sideways%22%5D%7D", ""},
		{"GET", "/containers/json?limit=abc", ""},
		{"GET", "/images/json?filters=%7Bbad", ""},
		{"GET", "/events?filters=%7Bbad", ""},
		{"GET", "/events?since=yesterday", ""},
		{"GET", "/volumes?filters=nope", ""},
		{"GET", "/networks?filters=%7B%22type%22%3A%5B%22weird%22%5D%7D", ""},
		{"POST", "/containers/prune?filters=%7Bbad", ""},
		// parameters
		{"POST", "/containers/target/kill?signal=SIGNOPE", ""},
		{"POST", "/containers/target/stop?t=abc", ""},
		{"POST", "/containers/target/wait?condition=never", ""},
		{"GET", "/containers/target/logs?stdout=1&since=abc", ""},
		{"GET", "/containers/target/logs?stdout=1&tail=-x", ""},
		{"POST", "/containers/target/resize?h=abc&w=3", ""},
		{"POST", "/containers/target/attach?stream=1&stdin=1&detachKeys=ctrl-9", ""},
		{"POST", "/containers/target/exec", `{"Cmd": []}`},
		{"POST", "/containers/target/exec", `{"Cmd": ["sh"], "DetachKeys": "bogus-key"}`},
		{"POST", "/containers/target/exec", `{"Cmd": "sh", "User": 5}`},
		{"POST", "/containers/target/update", `{"Memory": "x"}`},
		{"POST", "/containers/target/update", `{"CpuShares": 5}`},
		{"POST", "/containers/target/update", `{"PidsLimit": -5}`},
		{"POST", "/containers/target/update", `{"Memory": -1}`},
		{"POST", "/containers/target/update", `{"RestartPolicy": {"Name": "sometimes"}}`},
		{"HEAD", "/containers/target/archive?path=relative", ""},
		{"HEAD", "/containers/target/archive?path=%2Fnosuch", ""},
		{"GET", "/containers/target/archive", ""},
		{"PUT", "/containers/target/archive?path=%2Ftmp", "not a tar at all"},
		{"PUT", "/containers/target/archive?path=tmp", "x"},
		{"PUT", "/containers/target/archive?path=%2Fnosuchdir", "x"},
		// versions and routes
		{"GET", "/v0.1/version", ""},
		{"GET", "/v99.0/version", ""},
		{"GET", "/nosuchroute", ""},
	} {
		var body io.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		path := c.path
		if !strings.HasPrefix(path, "/v0") && !strings.HasPrefix(path, "/v9") {
			path = "/v1.56" + path
		}
		code, resp := dockerRaw(t, d.dockerSocket(), c.method, path, body)
		label := c.method + " " + c.path + " " + c.body
		if len(label) > 120 {
			label = label[:120] + "..."
		}
		if code < 400 || code >= 500 {
			t.Errorf("%s: %d %.300s, want a 4xx", label, code, resp)
			continue
		}
		if c.method != "HEAD" && !strings.Contains(resp, `"message":`) {
			t.Errorf("%s: %d %.300s, want {\"message\": ...}", label, code, resp)
		}
	}
	// Still serving, and the container untouched.
	ins, err := cli.ContainerInspect(ctx, "target", client.ContainerInspectOptions{})
	if err != nil || !ins.Container.State.Running {
		t.Errorf("after the sweep: %+v, %v", ins.Container.State, err)
	}
}
