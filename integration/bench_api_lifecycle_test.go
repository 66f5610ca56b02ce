package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// engineAPI calls an engine daemon's HTTP API on its unix socket, keeping
// its connections alive as the engine's own client does.
type engineAPI struct {
	hc *http.Client
}

func newEngineAPI(d *engineDaemon, conns int) *engineAPI {
	return &engineAPI{hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", d.sock)
		},
		MaxIdleConnsPerHost: conns,
	}}}
}

// do sends body (JSON, when not nil) and returns the response body; a
// status other than want is an error.
func (a *engineAPI) do(ctx context.Context, method, path string, body any, want int) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://engine/v1"+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != want {
		err = fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, out)
	}
	return out, err
}

// create creates a container from opts and returns its id.
func (a *engineAPI) create(ctx context.Context, opts map[string]any) (string, error) {
	out, err := a.do(ctx, http.MethodPost, "/containers", opts, http.StatusCreated)
	if err != nil {
		return "", err
	}
	var rec struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(out, &rec); err != nil || rec.ID == "" {
		return "", fmt.Errorf("create: no id in %s (%v)", out, err)
	}
	return rec.ID, nil
}

// engineSpec creates a container through the engine's API from opts and
// returns a maker of the same spec, read back from containerd, for raw
// containers of this run's namespace: the raw client then runs exactly
// what the engine runs. The container is never started; it is kept, with
// the files its spec bind-mounts, until the end.
func engineSpec(b *testing.B, a *engineAPI, d *engineDaemon, opts map[string]any) func(id string) *specs.Spec {
	ctx := testCtx(b)
	tmpl, err := a.create(ctx, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_, _ = a.do(context.Background(), http.MethodDelete, "/containers/"+tmpl+"?force=1", nil, http.StatusNoContent)
	})
	rc := rawClient(b)
	nsCtx := namespaces.WithNamespace(ctx, d.ns)
	tctr, err := rc.LoadContainer(nsCtx, tmpl)
	if err != nil {
		b.Fatal(err)
	}
	tspec, err := tctr.Spec(nsCtx)
	if err != nil {
		b.Fatal(err)
	}
	specJSON, err := json.Marshal(tspec)
	if err != nil {
		b.Fatal(err)
	}
	return func(id string) *specs.Spec {
		var s specs.Spec
		if err := json.Unmarshal(specJSON, &s); err != nil {
			b.Fatal(err)
		}
		s.Linux.CgroupsPath = "/" + testEnv.Namespace + "/" + id
		return &s
	}
}

// waitRemoved polls until the engine no longer knows ref.
func waitRemoved(b *testing.B, ctx context.Context, a *engineAPI, ref string) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := a.do(ctx, http.MethodGet, "/containers/"+ref, nil, http.StatusNotFound)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s not removed within 30s: %v", ref, err)
		}
		benchPause(5 * time.Millisecond) // poll interval
	}
}

// lifecyclePhases are the parts of one lifecycle, timed alike on every
// side: create, start (with the task, and the raw client's Wait set up
// before it), wait for the exit, delete (task and container).
type lifecyclePhases [4]time.Duration

var lifecyclePhaseNames = [4]string{"create", "start", "wait", "delete"}

// BenchmarkAPILifecycle: create, start, wait for the exit of `true` and
// delete, through the engine daemon's HTTP API on its unix socket (api),
// through `engine run --rm` as a CLI process (cli), and through the raw
// containerd client in this process (raw) with the very spec the engine
// gave its container, alternating the three in every iteration so that the
// machine's drift hits all alike. The daemon has no networking (--bridge
// none), so that the ratios are what the engine's layers cost; each side
// runs under containerd's default seccomp profile, then without a filter.
// api/raw and cli/raw are the ratios; <side>-<phase>-ms say where the time
// goes. cli-start-ms is the floor of any CLI command (`engine --help`: the
// binary starting and exiting), which the raw side, in this process, never
// pays; cli-less-start/raw takes it out.
//
//	go test -run XXX -bench APILifecycle -benchtime 30x ./integration/
func BenchmarkAPILifecycle(b *testing.B) {
	root, err := os.MkdirTemp(testEnv.Root, "eng-life-")
	if err != nil {
		b.Fatal(err)
	}
	d := startEngine(b, root, testEnv.Namespace+"-life", "--bridge", "none", "--log-level", "info")
	b.Cleanup(func() { cleanupEngine(b, d) })
	for _, cf := range []struct {
		name        string
		securityOpt []string
	}{
		{"seccomp=default", nil},
		{"seccomp=unconfined", []string{"seccomp=unconfined"}},
	} {
		b.Run(cf.name, func(b *testing.B) { benchAPILifecycle(b, d, cf.securityOpt) })
	}
}

func benchAPILifecycle(b *testing.B, d *engineDaemon, securityOpt []string) {
	ctx := testCtx(b)
	a := newEngineAPI(d, 4)
	opts := map[string]any{"rootfs": testEnv.Rootfs, "cmd": []string{"true"}, "security_opt": securityOpt}

	specFor := engineSpec(b, a, d, opts)
	rc := rawClient(b)
	cliArgs := append([]string{"run", "--rm", "--rootfs", testEnv.Rootfs}, func() []string {
		var f []string
		for _, o := range securityOpt {
			f = append(f, "--security-opt", o)
		}
		return f
	}()...)
	cliArgs = append(cliArgs, "--name")

	base := fmt.Sprintf("%s-%d", testID(b), b.N)
	var raw, api lifecyclePhases
	var cli, cliStart time.Duration
	lap := func(p *lifecyclePhases, i int, t *time.Time) {
		now := time.Now()
		p[i] += now.Sub(*t)
		*t = now
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// raw
		id := fmt.Sprintf("%s-raw-%d", base, i)
		t := time.Now()
		ctr, err := rc.NewContainer(ctx, id, containerd.WithSpec(specFor(id)))
		if err != nil {
			b.Fatal(err)
		}
		lap(&raw, 0, &t)
		task, err := ctr.NewTask(ctx, rawIO(id))
		if err != nil {
			b.Fatal(err)
		}
		exitCh, err := task.Wait(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := task.Start(ctx); err != nil {
			b.Fatal(err)
		}
		lap(&raw, 1, &t)
		if st := <-exitCh; st.ExitCode() != 0 {
			b.Fatalf("raw: exit %d", st.ExitCode())
		}
		lap(&raw, 2, &t)
		if _, err := task.Delete(ctx); err != nil {
			b.Fatal(err)
		}
		if err := ctr.Delete(ctx); err != nil {
			b.Fatal(err)
		}
		lap(&raw, 3, &t)

		// api
		t = time.Now()
		eid, err := a.create(ctx, opts)
		if err != nil {
			b.Fatal(err)
		}
		lap(&api, 0, &t)
		if _, err := a.do(ctx, http.MethodPost, "/containers/"+eid+"/start", nil, http.StatusNoContent); err != nil {
			b.Fatal(err)
		}
		lap(&api, 1, &t)
		out, err := a.do(ctx, http.MethodPost, "/containers/"+eid+"/wait", nil, http.StatusOK)
		if err != nil {
			b.Fatal(err)
		}
		var wr struct {
			ExitCode int `json:"exit_code"`
		}
		if err := json.Unmarshal(out, &wr); err != nil || wr.ExitCode != 0 {
			b.Fatalf("api wait: %s (%v)", out, err)
		}
		lap(&api, 2, &t)
		if _, err := a.do(ctx, http.MethodDelete, "/containers/"+eid, nil, http.StatusNoContent); err != nil {
			b.Fatal(err)
		}
		lap(&api, 3, &t)

		// cli
		name := fmt.Sprintf("%s-cli-%d", base, i)
		t = time.Now()
		cmd := exec.Command(d.bin, append(cliArgs, name, "true")...)
		cmd.Env = append(os.Environ(), "TEND_HOST="+d.sock)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("engine %v: %v: %s", cmd.Args, err, out)
		}
		cli += time.Since(t)
		// The floor of any CLI command: the same binary starting and
		// exiting without a call to the daemon.
		t = time.Now()
		if out, err := exec.Command(d.bin, "--help").CombinedOutput(); err != nil {
			b.Fatalf("engine --help: %v: %s", err, out)
		}
		cliStart += time.Since(t)
		// The engine removes the container after the CLI got its exit:
		// that work is not left to slow down the next iteration.
		b.StopTimer()
		waitRemoved(b, ctx, a, name)
		b.StartTimer()
	}
	b.StopTimer()
	n := float64(b.N)
	sum := func(p lifecyclePhases) (s time.Duration) {
		for _, d := range p {
			s += d
		}
		return s
	}
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 / n }
	b.ReportMetric(ms(sum(raw)), "raw-ms/op")
	b.ReportMetric(ms(sum(api)), "api-ms/op")
	b.ReportMetric(ms(cli), "cli-ms/op")
	b.ReportMetric(float64(sum(api))/float64(sum(raw)), "api/raw")
	b.ReportMetric(float64(cli)/float64(sum(raw)), "cli/raw")
	b.ReportMetric(ms(cliStart), "cli-start-ms")
	b.ReportMetric(float64(cli-cliStart)/float64(sum(raw)), "cli-less-start/raw")
	for i, name := range lifecyclePhaseNames {
		b.ReportMetric(ms(raw[i]), "raw-"+name+"-ms")
		b.ReportMetric(ms(api[i]), "api-"+name+"-ms")
	}
}
