package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// dockerSocket is the Docker API socket of an engine daemon started by
// startEngine.
func (d *engineDaemon) dockerSocket() string { return filepath.Join(d.root, "d.sock") }

// startDockerEngine starts an engine daemon with its Docker API and returns
// it with a Docker SDK client on that socket.
// dockerLoadTestImage loads the test image through the Docker API's
// image load and returns what the load said.
func dockerLoadTestImage(ctx context.Context, t *testing.T, cli *client.Client) string {
	t.Helper()
	f, err := os.Open(engineImage(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := cli.ImageLoad(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	out, err := io.ReadAll(res)
	if err != nil || !strings.Contains(string(out), "Loaded image") {
		t.Fatalf("image load: %s %v", out, err)
	}
	return string(out)
}

func startDockerEngine(t *testing.T, name string) (*engineDaemon, *client.Client) {
	t.Helper()
	root, err := os.MkdirTemp(testEnv.Root, name+"-")
	if err != nil {
		t.Fatal(err)
	}
	d := startEngine(t, root, testEnv.Namespace+"-"+name)
	t.Cleanup(func() { cleanupEngine(t, d) })
	cli, err := client.New(client.WithHost("unix://"+d.dockerSocket()), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return d, cli
}

// dockerRaw sends one request to the Docker socket and returns the status
// and body.
func dockerRaw(t *testing.T, sock, method, path string, body io.Reader) (int, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}, Timeout: 30 * time.Second}
	req, err := http.NewRequest(method, "http://docker"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDockerAPISDK drives the engine's Docker API with the Docker Go SDK.
func TestDockerAPISDK(t *testing.T) {
	d, cli := startDockerEngine(t, "dsdk")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	img := "busybox:latest"
	begin := time.Now()

	t.Run("Negotiation", func(t *testing.T) {
		p, err := cli.Ping(ctx, client.PingOptions{})
		if err != nil || p.APIVersion != "1.56" || p.OSType != "linux" {
			t.Fatalf("ping: %+v, %v", p, err)
		}
		v, err := cli.ServerVersion(ctx, client.ServerVersionOptions{})
		if err != nil || v.APIVersion != "1.56" || v.MinAPIVersion != "1.41" {
			t.Fatalf("version: %+v, %v", v, err)
		}
		if code, body := dockerRaw(t, d.dockerSocket(), "GET", "/v1.41/_ping", nil); code != 200 || body != "OK" {
			t.Errorf("GET /v1.41/_ping: %d %q", code, body)
		}
		if code, body := dockerRaw(t, d.dockerSocket(), "HEAD", "/_ping", nil); code != 200 || body != "" {
			t.Errorf("HEAD /_ping: %d %q", code, body)
		}
		for _, p := range []string{"/v1.40/version", "/v1.99/version"} {
			code, body := dockerRaw(t, d.dockerSocket(), "GET", p, nil)
			if code != 400 || !strings.Contains(body, `"message":"client version`) {
				t.Errorf("GET %s: %d %s, want 400 naming the client version", p, code, body)
			}
		}
		if _, err := cli.Info(ctx, client.InfoOptions{}); err != nil {
			t.Fatalf("info: %v", err)
		}
	})

	t.Run("ImageLoad", func(t *testing.T) {
		if out := dockerLoadTestImage(ctx, t, cli); !strings.Contains(out, "Loaded image: busybox:latest") {
			t.Fatalf("image load said %s", out)
		}
		list, err := cli.ImageList(ctx, client.ImageListOptions{})
		if err != nil || len(list.Items) == 0 || len(list.Items[0].RepoTags) == 0 {
			t.Fatalf("image list: %+v, %v", list, err)
		}
		ins, err := cli.ImageInspect(ctx, img)
		if err != nil || ins.ID == "" {
			t.Fatalf("image inspect: %+v, %v", ins, err)
		}
	})

	run := func(t *testing.T, name string, cfg *container.Config, hc *container.HostConfig) string {
		t.Helper()
		cfg.Image = img
		res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name, Config: cfg, HostConfig: hc})
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		return res.ID
	}

	t.Run("RunAttached", func(t *testing.T) {
		id := run(t, "attached", &container.Config{Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}}, nil)
		att, err := cli.ContainerAttach(ctx, id, client.ContainerAttachOptions{Stream: true, Stdout: true, Stderr: true})
		if err != nil {
			t.Fatal(err)
		}
		defer att.Close()
		wait := cli.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
		if _, err := cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		if _, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader); err != nil {
			t.Fatalf("demultiplex: %v", err)
		}
		if stdout.String() != "out\n" || stderr.String() != "err\n" {
			t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
		}
		select {
		case res := <-wait.Result:
			if res.StatusCode != 3 {
				t.Errorf("exit %d, want 3", res.StatusCode)
			}
		case err := <-wait.Error:
			t.Fatal(err)
		}
		ins, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil || ins.Container.State.Status != container.StateExited || ins.Container.State.ExitCode != 3 || ins.Container.Name != "/attached" {
			t.Fatalf("inspect: %+v, %v", ins.Container.State, err)
		}
		// Started again: 304, then a 304 for a stop of what is stopped.
		logs, err := cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true})
		if err != nil {
			t.Fatal(err)
		}
		stdout.Reset()
		stderr.Reset()
		_, _ = stdcopy.StdCopy(&stdout, &stderr, logs)
		logs.Close()
		if !strings.HasSuffix(stdout.String(), " out\n") || !strings.HasPrefix(stdout.String(), time.Now().UTC().Format("2006-01-")) {
			t.Errorf("logs --timestamps stdout %q", stdout.String())
		}
	})

	t.Run("AutoRemoveWaitRemoved", func(t *testing.T) {
		id := run(t, "autorm", &container.Config{Cmd: []string{"sh", "-c", "exit 4"}}, &container.HostConfig{AutoRemove: true})
		wait := cli.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionRemoved})
		if _, err := cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
		select {
		case res := <-wait.Result:
			if res.StatusCode != 4 {
				t.Errorf("exit %d, want 4", res.StatusCode)
			}
		case err := <-wait.Error:
			t.Fatal(err)
		}
		if _, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
			t.Errorf("inspect after auto-remove: %v, want not found", err)
		}
	})

	t.Run("HealthAndRestart", func(t *testing.T) {
		id := run(t, "healthy", &container.Config{
			Cmd:         []string{"sleep", "1000"},
			Labels:      map[string]string{"tier": "web"},
			Healthcheck: &container.HealthConfig{Test: []string{"CMD-SHELL", "true"}, Interval: 200 * time.Millisecond},
		}, &container.HostConfig{Resources: container.Resources{Memory: 64 << 20, NanoCPUs: 5e8}})
		crash := run(t, "crasher", &container.Config{Cmd: []string{"sh", "-c", "exit 1"}},
			&container.HostConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 2}})
		evs := cli.Events(ctx, client.EventsListOptions{Since: begin.Format(time.RFC3339Nano), Filters: make(client.Filters).Add("container", "healthy", "crasher")})
		for _, c := range []string{id, crash} {
			if _, err := cli.ContainerStart(ctx, c, client.ContainerStartOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		healthy, dies := false, 0
		deadline := time.After(60 * time.Second)
		for !healthy || dies < 3 {
			select {
			case m := <-evs.Messages:
				switch name := m.Actor.Attributes["name"]; {
				case name == "healthy" && m.Action == events.ActionHealthStatusHealthy:
					healthy = true
				case name == "crasher" && m.Action == events.ActionDie:
					dies++
					if m.Actor.Attributes["exitCode"] != "1" || m.Type != events.ContainerEventType || m.Actor.ID != crash {
						t.Errorf("die event %+v lacks exitCode 1", m)
					}
				}
			case err := <-evs.Err:
				t.Fatalf("events: %v", err)
			case <-deadline:
				t.Fatalf("healthy: %v, crasher's dies: %d; want health_status: healthy and three dies", healthy, dies)
			}
		}
		ins, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		h := ins.Container.State.Health
		if h == nil || h.Status != container.Healthy || h.FailingStreak != 0 || len(h.Log) == 0 || h.Log[0].ExitCode != 0 {
			t.Errorf("State.Health %+v", h)
		}
		if hc := ins.Container.HostConfig; hc.Memory != 64<<20 || hc.NanoCPUs != 5e8 {
			t.Errorf("HostConfig resources: memory %d, nanocpus %d", hc.Memory, hc.NanoCPUs)
		}
		var cins client.ContainerInspectResult
		enginePoll(t, 30*time.Second, "crasher to end its restarts", func() bool {
			cins, err = cli.ContainerInspect(ctx, crash, client.ContainerInspectOptions{})
			return err == nil && cins.Container.State.Status == container.StateExited
		})
		if cins.Container.RestartCount != 2 || cins.Container.State.ExitCode != 1 || cins.Container.State.OOMKilled {
			t.Errorf("crasher: restarts %d, state %+v", cins.Container.RestartCount, cins.Container.State)
		}
		list, err := cli.ContainerList(ctx, client.ContainerListOptions{Filters: make(client.Filters).Add("label", "tier=web").Add("health", "healthy")})
		if err != nil || len(list.Items) != 1 || list.Items[0].ID != id || !strings.Contains(list.Items[0].Status, "(healthy)") {
			t.Errorf("list label=tier=web health=healthy: %+v, %v", list.Items, err)
		}
		list, err = cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("exited", "1")})
		if err != nil || len(list.Items) != 1 || list.Items[0].Names[0] != "/crasher" {
			t.Errorf("list exited=1: %+v, %v", list.Items, err)
		}
	})

	t.Run("Exec", func(t *testing.T) {
		ex, err := cli.ExecCreate(ctx, "healthy", client.ExecCreateOptions{Cmd: []string{"sh", "-c", "read x; echo got $x; echo e >&2; exit 5"}, AttachStdin: true, AttachStdout: true, AttachStderr: true})
		if err != nil {
			t.Fatal(err)
		}
		att, err := cli.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := att.Conn.Write([]byte("hello\n")); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		if _, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader); err != nil {
			t.Fatal(err)
		}
		att.Close()
		if stdout.String() != "got hello\n" || stderr.String() != "e\n" {
			t.Errorf("exec stdout %q stderr %q", stdout.String(), stderr.String())
		}
		in, err := cli.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
		if err != nil || in.Running || in.ExitCode != 5 {
			t.Errorf("exec inspect: %+v, %v", in, err)
		}
		det, err := cli.ExecCreate(ctx, "healthy", client.ExecCreateOptions{Cmd: []string{"sh", "-c", "exit 6"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.ExecStart(ctx, det.ID, client.ExecStartOptions{Detach: true}); err != nil {
			t.Fatal(err)
		}
		enginePoll(t, 20*time.Second, "detached exec to end", func() bool {
			in, err := cli.ExecInspect(ctx, det.ID, client.ExecInspectOptions{})
			return err == nil && !in.Running && in.ExitCode == 6
		})
		if _, err := cli.ExecCreate(ctx, "crasher", client.ExecCreateOptions{Cmd: []string{"true"}}); !cerrdefs.IsConflict(err) {
			t.Errorf("exec in a stopped container: %v, want a conflict", err)
		}
	})

	t.Run("StatsTopPause", func(t *testing.T) {
		res, err := cli.ContainerStats(ctx, "healthy", client.ContainerStatsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var st container.StatsResponse
		err = json.NewDecoder(res.Body).Decode(&st)
		res.Body.Close()
		if err != nil || st.Name != "/healthy" || st.MemoryStats.Usage == 0 || st.MemoryStats.Limit != 64<<20 || st.PidsStats.Current == 0 || st.CPUStats.SystemUsage == 0 {
			t.Errorf("one-shot stats: %+v, %v", st, err)
		}
		res, err = cli.ContainerStats(ctx, "healthy", client.ContainerStatsOptions{Stream: true})
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(res.Body)
		for i := 0; i < 2; i++ {
			if err := dec.Decode(&st); err != nil || st.PreCPUStats.CPUUsage.TotalUsage == 0 {
				t.Errorf("streamed stats %d: precpu %+v, %v", i, st.PreCPUStats, err)
			}
		}
		res.Body.Close()
		top, err := cli.ContainerTop(ctx, "healthy", client.ContainerTopOptions{})
		if err != nil || len(top.Processes) == 0 || top.Titles[1] != "PID" {
			t.Errorf("top: %+v, %v", top, err)
		}
		if _, err := cli.ContainerPause(ctx, "healthy", client.ContainerPauseOptions{}); err != nil {
			t.Fatal(err)
		}
		ins, _ := cli.ContainerInspect(ctx, "healthy", client.ContainerInspectOptions{})
		if !ins.Container.State.Paused || !ins.Container.State.Running {
			t.Errorf("paused state: %+v", ins.Container.State)
		}
		if _, err := cli.ContainerUnpause(ctx, "healthy", client.ContainerUnpauseOptions{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("LogsFollow", func(t *testing.T) {
		id := run(t, "talker", &container.Config{Cmd: []string{"sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.2; done"}}, nil)
		if _, err := cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
		logs, err := cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, Follow: true})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		_, err = stdcopy.StdCopy(&out, io.Discard, logs)
		logs.Close()
		if err != nil || out.String() != "line1\nline2\nline3\n" {
			t.Errorf("logs -f: %q, %v", out.String(), err)
		}
		logs, err = cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, Tail: "1"})
		if err != nil {
			t.Fatal(err)
		}
		out.Reset()
		_, _ = stdcopy.StdCopy(&out, io.Discard, logs)
		logs.Close()
		if out.String() != "line3\n" {
			t.Errorf("logs --tail 1: %q", out.String())
		}
	})

	t.Run("StopKillRemove", func(t *testing.T) {
		if _, err := cli.ContainerStop(ctx, "healthy", client.ContainerStopOptions{}); err != nil {
			t.Fatal(err)
		}
		wait := cli.ContainerWait(ctx, "healthy", client.ContainerWaitOptions{})
		select {
		case res := <-wait.Result:
			if res.StatusCode != 143 && res.StatusCode != 137 {
				t.Errorf("stopped sleep exit %d", res.StatusCode)
			}
		case err := <-wait.Error:
			t.Fatal(err)
		}
		if _, err := cli.ContainerKill(ctx, "healthy", client.ContainerKillOptions{}); !cerrdefs.IsConflict(err) {
			t.Errorf("kill of a stopped container: %v, want a conflict", err)
		}
		id := run(t, "victim", &container.Config{Cmd: []string{"sleep", "1000"}}, nil)
		if _, err := cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{}); !cerrdefs.IsConflict(err) {
			t.Errorf("remove of a running container: %v, want a conflict", err)
		}
		if _, err := cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		pr, err := cli.ContainerPrune(ctx, client.ContainerPruneOptions{})
		if err != nil || len(pr.Report.ContainersDeleted) < 3 {
			t.Errorf("prune: %+v, %v", pr, err)
		}
	})

	t.Run("BadInput", func(t *testing.T) {
		_, err := cli.ContainerInspect(ctx, "nosuch", client.ContainerInspectOptions{})
		if !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "nosuch") {
			t.Errorf("inspect nosuch: %v", err)
		}
		_, err = cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: img}, HostConfig: &container.HostConfig{PidMode: "host", UTSMode: "host"}})
		if !cerrdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "HostConfig.PidMode, HostConfig.UTSMode") {
			t.Errorf("create privileged: %v, want 400 naming the fields", err)
		}
		_, err = cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: "nosuchimage"}})
		if !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "No such image") {
			t.Errorf("create from a missing image: %v", err)
		}
		_, err = cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: img}, HostConfig: &container.HostConfig{Resources: container.Resources{Memory: 1}}})
		if !cerrdefs.IsInvalidArgument(err) {
			t.Errorf("create with 1 byte of memory: %v, want 400", err)
		}
		for _, c := range []struct{ method, path, body string }{
			{"POST", "/containers/create", "{not json"},
			{"POST", "/containers/x/kill?signal=NOPE", ""},
			{"GET", "/containers/json?filters=%7Bbad", ""},
			{"GET", "/containers/x/logs", ""},
			{"POST", "/containers/x/wait?condition=never", ""},
			{"GET", "/events?since=yesterday", ""},
			{"GET", "/containers/..%2f/json", ""},
		} {
			var body io.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			}
			code, resp := dockerRaw(t, d.dockerSocket(), c.method, "/v1.56"+c.path, body)
			if code < 400 || code >= 500 || !strings.Contains(resp, `"message":`) {
				t.Errorf("%s %s: %d %s, want 4xx with a message", c.method, c.path, code, resp)
			}
		}
		code, resp := dockerRaw(t, d.dockerSocket(), "POST", "/v1.56/commit", nil)
		if code != 501 || !strings.Contains(resp, "commit") {
			t.Errorf("POST /commit: %d %s, want 501", code, resp)
		}
	})
}
