package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tendhq/tend/internal/testutil"
)

// TestEngine runs one engine daemon and drives every CLI command against
// it; the subtests share the daemon and run in order.
func TestEngine(t *testing.T) {
	root, err := os.MkdirTemp(testEnv.Root, "eng-")
	if err != nil {
		t.Fatal(err)
	}
	ns := testEnv.Namespace + "-engine"
	d := startEngine(t, root, ns)
	t.Cleanup(func() { cleanupEngine(t, d) })
	img := testEnv.ImageRef

	t.Run("ImageImport", func(t *testing.T) {
		out := d.must(t, "image", "import", engineImage(t))
		if !strings.Contains(out, "Loaded image: "+img) {
			t.Fatalf("image import printed %q, want it to name %s", out, img)
		}
		out = d.must(t, "image", "ls", "--format", "json")
		var found bool
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var im struct {
				Ref  string `json:"ref"`
				Size int64  `json:"size"`
			}
			if err := json.Unmarshal([]byte(line), &im); err != nil {
				t.Fatalf("image ls json line %q: %v", line, err)
			}
			found = found || (im.Ref == img && im.Size > 0)
		}
		if !found {
			t.Fatalf("image ls --format json lacks %s with a size: %s", img, out)
		}
		if out := d.must(t, "image", "ls"); !strings.HasPrefix(out, "REPOSITORY") || !strings.Contains(out, "docker.io/library/busybox") {
			t.Fatalf("image ls table: %q", out)
		}
	})

	t.Run("VersionInfo", func(t *testing.T) {
		if out := d.must(t, "version"); !strings.Contains(out, "Server:") || !strings.Contains(out, "containerd:") {
			t.Errorf("version: %q", out)
		}
		var info struct {
			Namespace   string `json:"namespace"`
			LiveRestore bool   `json:"live_restore"`
			Images      int    `json:"images"`
		}
		if err := json.Unmarshal([]byte(d.must(t, "info", "--format", "json")), &info); err != nil {
			t.Fatal(err)
		}
		if info.Namespace != ns || !info.LiveRestore || info.Images < 1 {
			t.Errorf("info: %+v, want namespace %s, live-restore, >= 1 image", info, ns)
		}
	})

	t.Run("RunAttached", func(t *testing.T) {
		out, errs, code := d.run(t, nil, "run", "--rm", img, "echo", "hello world")
		if code != 0 || out != "hello world\n" {
			t.Errorf("run echo: exit %d stdout %q stderr %q", code, out, errs)
		}
		out, _, code = d.run(t, nil, "run", "--rm", img, "sh", "-c", "echo out; echo err >&2; exit 3")
		if code != 3 || out != "out\n" {
			t.Errorf("run exit 3: exit %d, stdout %q", code, out)
		}
		out, _, code = d.run(t, strings.NewReader("piped input\n"), "run", "--rm", "-i", img, "cat")
		if code != 0 || out != "piped input\n" {
			t.Errorf("run -i cat: exit %d, stdout %q", code, out)
		}
		out, _, code = d.run(t, nil, "run", "--rm", "-e", "FOO=bar", "--label", "x=y", img, "sh", "-c", "echo $FOO")
		if code != 0 || out != "bar\n" {
			t.Errorf("run -e: exit %d, stdout %q", code, out)
		}
		out, _, code = d.run(t, nil, "run", "--rm", "--rootfs", testEnv.Rootfs, "echo", "from-rootfs")
		if code != 0 || out != "from-rootfs\n" {
			t.Errorf("run --rootfs: exit %d, stdout %q", code, out)
		}
	})

	t.Run("RunExitCodes", func(t *testing.T) {
		d.expectFail(t, 127, "Error:", "run", "--rm", img, "no-such-command")
		d.expectFail(t, 126, "Error:", "run", "--rm", img, "/etc/passwd")
		d.expectFail(t, 125, "Error:", "run", "--rm", "example.com/no/such:image", "true")
		d.expectFail(t, 125, "invalid memory size", "run", "--memory", "12q", img, "true")
		d.expectFail(t, 125, "restart policy", "run", "--restart", "sometimes", img, "true")
		d.expectFail(t, 125, "on-unhealthy", "run", "--health-cmd", "true", "--on-unhealthy", "explode", img, "true")
		d.expectFail(t, 125, "--health-cmd", "run", "--health-interval", "1s", img, "true")
		d.expectFail(t, 125, "unknown flag", "run", "--bogus", img, "true")
		d.expectFail(t, 125, "requires an IMAGE", "run")
		d.expectFail(t, 125, "template parsing error", "ps", "--format", "{{.Names")
	})

	name := "web"
	var id string
	t.Run("RunDetached", func(t *testing.T) {
		out := d.must(t, "run", "-d", "--name", name, "--label", "app=web", "--memory", "64m", "--pids-limit", "100",
			img, "sh", "-c", "echo started; echo oops >&2; while true; do sleep 1; done")
		id = strings.TrimSpace(out)
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
			t.Fatalf("run -d printed %q, want a 64-hex id", out)
		}
		d.expectFail(t, 125, "in use", "run", "-d", "--name", name, img, "true")
	})
	// needWeb skips the subtests that work on RunDetached's container
	// when it did not run (-run filters) or failed.
	needWeb := func(t *testing.T) {
		if id == "" {
			t.Skip("needs the container RunDetached makes")
		}
	}

	t.Run("Ps", func(t *testing.T) {
		needWeb(t)
		out := d.must(t, "ps")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if !regexp.MustCompile(`^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$`).MatchString(lines[0]) {
			t.Fatalf("ps header %q", lines[0])
		}
		row := ""
		for _, l := range lines[1:] {
			if strings.HasPrefix(l, id[:12]) {
				row = l
			}
		}
		if !regexp.MustCompile(`^` + id[:12] + `\s+` + regexp.QuoteMeta(img) + `\s+"sh -c 'echo started…"\s+.* ago\s+Up .*\s+web$`).MatchString(row) {
			t.Fatalf("ps row %q", row)
		}
		if out := d.must(t, "ps", "-q"); !strings.Contains(out, id[:12]+"\n") {
			t.Errorf("ps -q: %q", out)
		}
		if out := d.must(t, "ps", "-q", "--filter", "label=app=web"); strings.TrimSpace(out) != id[:12] {
			t.Errorf("ps --filter label=app=web: %q", out)
		}
		if out := d.must(t, "ps", "-q", "--filter", "label=app=nope"); strings.TrimSpace(out) != "" {
			t.Errorf("ps --filter label=app=nope: %q", out)
		}
		var e struct {
			ID, FullID, Names, State, Status, Image string
			Restarts                                int
		}
		if err := json.Unmarshal([]byte(d.must(t, "ps", "--format", "json", "--filter", "name="+name)), &e); err != nil {
			t.Fatal(err)
		}
		if e.FullID != id || e.Names != name || e.State != "running" || !strings.HasPrefix(e.Status, "Up ") || e.Image != img {
			t.Errorf("ps --format json: %+v", e)
		}
	})

	t.Run("Logs", func(t *testing.T) {
		needWeb(t)
		enginePoll(t, 10*time.Second, "log lines", func() bool {
			out, errs, _ := d.run(t, nil, "logs", name)
			return out == "started\n" && errs == "oops\n"
		})
		out, errs, code := d.run(t, nil, "logs", id[:8])
		if code != 0 || out != "started\n" || errs != "oops\n" {
			t.Errorf("logs by id prefix: exit %d stdout %q stderr %q", code, out, errs)
		}
		out = d.must(t, "logs", "--timestamps", "--tail", "1", name)
		if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z (started|oops)\n$`).MatchString(out) && out != "" {
			t.Errorf("logs --timestamps --tail 1: %q", out)
		}
		d.expectFail(t, 125, "invalid --tail", "logs", "--tail", "x", name)
		// logs -f follows new lines; it ends with the context. --since
		// (not --tail 0) so that a line written before the stream opens
		// is still seen.
		ctx, cancel := context.WithCancel(context.Background())
		since := strconv.FormatFloat(float64(time.Now().UnixNano())/1e9, 'f', 6, 64)
		cmd := exec.CommandContext(ctx, d.bin, "-H", d.sock, "logs", "-f", "--since", since, name)
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); _ = cmd.Wait() }()
		d.must(t, "exec", name, "sh", "-c", "echo followed > /proc/1/fd/1")
		line, err := engineReadLine(stdout, 10*time.Second)
		if err != nil || line != "followed" {
			t.Errorf("logs -f read %q, %v", line, err)
		}
	})

	t.Run("Inspect", func(t *testing.T) {
		needWeb(t)
		rec := d.inspect(t, name)
		if rec.ID != id || rec.State != "running" || rec.Pid <= 0 {
			t.Fatalf("inspect: %+v", rec)
		}
		if err := syscall.Kill(rec.Pid, 0); err != nil {
			t.Errorf("inspect pid %d is not alive: %v", rec.Pid, err)
		}
		out, errs, code := d.run(t, nil, "inspect", name, "nosuch")
		if code != 1 || !strings.Contains(errs, "Error: No such container: nosuch") || !strings.Contains(out, id) {
			t.Errorf("inspect name nosuch: exit %d, stderr %q", code, errs)
		}
	})

	t.Run("Exec", func(t *testing.T) {
		needWeb(t)
		if out := d.must(t, "exec", name, "echo", "hi"); out != "hi\n" {
			t.Errorf("exec echo: %q", out)
		}
		if out := d.must(t, "exec", "-e", "A=b", name, "sh", "-c", "echo $A"); out != "b\n" {
			t.Errorf("exec -e: %q", out)
		}
		out, _, code := d.run(t, strings.NewReader("to cat\n"), "exec", "-i", name, "cat")
		if code != 0 || out != "to cat\n" {
			t.Errorf("exec -i cat: exit %d stdout %q", code, out)
		}
		if _, _, code := d.run(t, nil, "exec", name, "sh", "-c", "exit 5"); code != 5 {
			t.Errorf("exec exit 5: got %d", code)
		}
		// docker 20.10+: a command that cannot be run is 126 for exec
		// (127 for run), an unknown container 1.
		d.expectFail(t, 126, "Error:", "exec", name, "no-such-command")
		d.expectFail(t, 1, "No such container: nosuch", "exec", "nosuch", "true")
	})

	t.Run("TopStats", func(t *testing.T) {
		needWeb(t)
		out := d.must(t, "top", name)
		if !strings.HasPrefix(out, "PID") || !strings.Contains(out, "sh -c") {
			t.Errorf("top: %q", out)
		}
		out = d.must(t, "stats", "--no-stream", name)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "CONTAINER ID") || !strings.HasPrefix(lines[1], id[:12]) || !strings.Contains(lines[1], "/ 64MiB") {
			t.Errorf("stats --no-stream: %q", out)
		}
		// docker's stats JSON: strings, as the table shows them.
		var s struct{ Name, ID, MemUsage, CPUPerc, PIDs, BlockIO string }
		if err := json.Unmarshal([]byte(d.must(t, "stats", "--no-stream", "--format", "json", name)), &s); err != nil {
			t.Fatal(err)
		}
		if s.Name != name || s.ID != id[:12] || !strings.HasSuffix(s.MemUsage, " / 64MiB") || s.PIDs == "0" || !strings.HasSuffix(s.CPUPerc, "%") {
			t.Errorf("stats json: %+v", s)
		}
		if out := d.must(t, "stats", "--no-stream", "--format", "{{.Name}}: {{.PIDs}} pids", name); !regexp.MustCompile(`^web: [1-9]\d* pids\n$`).MatchString(out) {
			t.Errorf("stats --format template: %q", out)
		}
	})

	t.Run("PauseUnpause", func(t *testing.T) {
		needWeb(t)
		d.must(t, "pause", name)
		if out := d.must(t, "ps", "--filter", "name="+name); !strings.Contains(out, "(Paused)") {
			t.Errorf("ps of paused: %q", out)
		}
		d.expectFail(t, 1, "Error:", "pause", name)
		d.must(t, "unpause", name)
		if rec := d.inspect(t, name); rec.State != "running" {
			t.Errorf("state after unpause: %s", rec.State)
		}
	})

	t.Run("StopStartRestartWaitKill", func(t *testing.T) {
		needWeb(t)
		if out := d.must(t, "stop", "-t", "1", name); out != name+"\n" {
			t.Errorf("stop printed %q", out)
		}
		rec := d.inspect(t, name)
		if rec.State != "exited" || (rec.ExitCode != 137 && rec.ExitCode != 143) {
			t.Errorf("after stop: %+v", rec)
		}
		d.must(t, "stop", name) // stopping a stopped container is a no-op, as in docker
		if out := d.must(t, "ps", "-a", "--filter", "name="+name); !regexp.MustCompile(`Exited \(1(37|43)\) .* ago`).MatchString(out) {
			t.Errorf("ps -a after stop: %q", out)
		}
		if out := d.must(t, "ps", "-q"); strings.Contains(out, id[:12]) {
			t.Errorf("ps without -a lists the stopped container: %q", out)
		}
		d.expectFail(t, 1, "not running", "kill", name)
		d.must(t, "start", name)
		d.must(t, "restart", "-t", "1", name)
		if rec := d.inspect(t, name); rec.State != "running" {
			t.Errorf("state after restart: %+v", rec)
		}
		// wait prints the exit code of a container killed meanwhile.
		waitCmd := exec.Command(d.bin, "-H", d.sock, "wait", name)
		var waitOut bytes.Buffer
		waitCmd.Stdout = &waitOut
		if err := waitCmd.Start(); err != nil {
			t.Fatal(err)
		}
		d.expectFail(t, 1, "invalid signal", "kill", "-s", "BOGUS", name)
		d.must(t, "kill", "-s", "KILL", name)
		if err := waitCmd.Wait(); err != nil || strings.TrimSpace(waitOut.String()) != "137" {
			t.Errorf("wait: %v, printed %q, want 137", err, waitOut.String())
		}
	})

	t.Run("UnknownContainer", func(t *testing.T) {
		for _, cmd := range [][]string{
			{"stop", "nosuch"}, {"start", "nosuch"}, {"kill", "nosuch"}, {"rm", "nosuch"}, {"logs", "nosuch"},
			{"pause", "nosuch"}, {"restart", "nosuch"}, {"wait", "nosuch"}, {"top", "nosuch"}, {"stats", "--no-stream", "nosuch"},
		} {
			d.expectFail(t, 1, "Error: No such container: nosuch", cmd...)
		}
	})

	t.Run("Events", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		// --since covers the moment between the start of the stream and its subscription.
		since := strconv.FormatFloat(float64(time.Now().Add(-time.Second).UnixNano())/1e9, 'f', 3, 64)
		cmd := exec.CommandContext(ctx, d.bin, "-H", d.sock, "events", "--format", "json", "--since", since, "--filter", "container=evt")
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); _ = cmd.Wait() }()
		if _, errs, code := d.run(t, nil, "run", "--name", "evt", img, "sh", "-c", "exit 2"); code != 2 {
			t.Fatalf("run evt: exit %d (%s), want 2", code, errs)
		}
		want := []string{"create", "start", "die"}
		var got []string
		for len(got) < len(want) {
			line, err := engineReadLine(stdout, 20*time.Second)
			if err != nil {
				t.Fatalf("events: %v after %v", err, got)
			}
			// docker's event shape.
			var e struct {
				Type, Action, Status, ID, From string
				Actor                          struct {
					ID         string
					Attributes map[string]string
				}
				TimeNano int64 `json:"timeNano"`
			}
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("events json %q: %v", line, err)
			}
			if e.Actor.Attributes["name"] != "evt" || e.Type != "container" || e.Actor.ID == "" || e.ID != e.Actor.ID || e.TimeNano == 0 {
				t.Fatalf("filter container=evt let through, or not docker's shape: %q", line)
			}
			if e.From != img || e.Actor.Attributes["image"] != img {
				t.Errorf("event image %q / %q, want %s", e.From, e.Actor.Attributes["image"], img)
			}
			got = append(got, e.Action)
			if e.Action == "die" && e.Actor.Attributes["exitCode"] != "2" {
				t.Errorf("die event attributes %v, want exitCode 2", e.Actor.Attributes)
			}
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("events %v, want %v", got, want)
		}
		// --since replays; --until ends the stream.
		out := d.must(t, "events", "--since", "5m", "--until", "0s", "--filter", "event=die", "--filter", "container=evt")
		if !regexp.MustCompile(`container die [0-9a-f]{64} \(exitCode=2, image=.*name=evt`).MatchString(out) {
			t.Errorf("events --since --until: %q", out)
		}
		d.must(t, "rm", "evt")
	})

	t.Run("RemoveErrors", func(t *testing.T) {
		needWeb(t)
		d.must(t, "start", name)
		d.expectFail(t, 1, "Error:", "rm", name)
		if out := d.must(t, "rm", "-f", name); out != name+"\n" {
			t.Errorf("rm -f printed %q", out)
		}
		d.expectFail(t, 1, "No such container: "+name, "inspect", name)
	})

	t.Run("RestartPolicy", func(t *testing.T) {
		d.must(t, "run", "-d", "--name", "crasher", "--restart", "on-failure:2", img, "sh", "-c", "exit 3")
		enginePoll(t, 30*time.Second, "crasher to give up after 2 restarts", func() bool {
			rec := d.inspect(t, "crasher")
			return rec.State == "exited" && rec.RestartCount == 2
		})
		if rec := d.inspect(t, "crasher"); rec.ExitCode != 3 {
			t.Errorf("crasher: %+v", rec)
		}
		if out := d.must(t, "ps", "-a", "--filter", "name=crasher", "--format", "{{.Status}}|{{.Restarts}}|{{.Names}}"); !regexp.MustCompile(`^Exited \(3\) .*\|2\|crasher\n$`).MatchString(out) {
			t.Errorf("ps -a crasher: %q", out)
		}
		d.must(t, "rm", "crasher")
	})

	t.Run("Health", func(t *testing.T) {
		d.must(t, "run", "-d", "--name", "healthy", "--health-cmd", "test -e /tmp/ok", "--health-interval", "200ms",
			"--health-retries", "1", img, "sh", "-c", "touch /tmp/ok; exec sleep 300")
		enginePoll(t, 30*time.Second, "healthy", func() bool {
			return strings.Contains(d.must(t, "ps", "--filter", "name=healthy"), "(healthy)")
		})
		d.must(t, "exec", "healthy", "rm", "/tmp/ok")
		enginePoll(t, 30*time.Second, "unhealthy", func() bool {
			return strings.Contains(d.must(t, "ps", "--filter", "name=healthy"), "(unhealthy)")
		})
		d.must(t, "rm", "-f", "healthy")
		d.expectFail(t, 125, "conflicts", "run", "--no-healthcheck", "--health-cmd", "true", img, "true")
	})

	t.Run("InteractiveTTY", func(t *testing.T) { testEngineTTY(t, d, img) })

	t.Run("Concurrent", func(t *testing.T) {
		const n = 20
		var wg sync.WaitGroup
		errs := make(chan string, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				if out, e, code := d.run(t, nil, "run", "-d", "--name", fmt.Sprintf("par-%d", i), "--label", "par=1", img, "sleep", "300"); code != 0 {
					errs <- fmt.Sprintf("run par-%d: exit %d %s %s", i, code, out, e)
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
		ids := strings.Fields(d.must(t, "ps", "-q", "--filter", "label=par=1"))
		if len(ids) != n {
			t.Fatalf("ps lists %d of %d parallel containers", len(ids), n)
		}
		var rmErrs sync.Map
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				if _, e, code := d.run(t, nil, "rm", "-f", fmt.Sprintf("par-%d", i)); code != 0 {
					rmErrs.Store(i, e)
				}
			}(i)
		}
		wg.Wait()
		rmErrs.Range(func(k, v any) bool { t.Errorf("rm -f par-%v: %v", k, v); return true })
		if out := d.must(t, "ps", "-aq", "--filter", "label=par=1"); strings.TrimSpace(out) != "" {
			t.Fatalf("ps -a after removing them all: %q", out)
		}
	})

	t.Run("API", func(t *testing.T) { testEngineAPI(t, d) })
	t.Run("Hardening", func(t *testing.T) { testEngineHardening(t, d, img) })

	t.Run("LiveRestore", func(t *testing.T) {
		d.must(t, "run", "-d", "--name", "survivor", img, "sleep", "300")
		before := d.inspect(t, "survivor")
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
			err := d.signal(t, sig)
			if sig == syscall.SIGTERM && err != nil {
				t.Fatalf("daemon exit after SIGTERM: %v\n%s", err, d.logs.String())
			}
			if err := syscall.Kill(before.Pid, 0); err != nil {
				t.Fatalf("container pid %d died with the daemon (%v): %v", before.Pid, sig, err)
			}
			if _, err := os.Stat(d.sock); sig == syscall.SIGTERM && err == nil {
				t.Errorf("socket %s left behind after a graceful shutdown", d.sock)
			}
			d = startEngine(t, root, ns)
			after := d.inspect(t, "survivor")
			if after.State != "running" || after.Pid != before.Pid || after.ID != before.ID {
				t.Fatalf("after daemon %v and restart: %+v, before %+v", sig, after, before)
			}
		}
		d.must(t, "rm", "-f", "survivor")
	})
}

// engineReadLine reads one line from r within timeout. On timeout the
// reading goroutine ends when r is closed by its owner.
func engineReadLine(r io.Reader, timeout time.Duration) (string, error) {
	type res struct {
		s   string
		err error
	}
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = engineReaders.get(r)
	}
	ch := make(chan res, 1)
	go func() {
		s, err := br.ReadString('\n')
		ch <- res{strings.TrimRight(s, "\n"), err}
	}()
	select {
	case v := <-ch:
		return v.s, v.err
	case <-time.After(timeout):
		return "", fmt.Errorf("no line within %v", timeout)
	}
}

// engineReaders keeps one bufio.Reader per stream so that successive reads
// do not lose buffered data.
var engineReaders = &engineReaderCache{m: map[io.Reader]*bufio.Reader{}}

type engineReaderCache struct {
	mu sync.Mutex
	m  map[io.Reader]*bufio.Reader
}

func (c *engineReaderCache) get(r io.Reader) *bufio.Reader {
	c.mu.Lock()
	defer c.mu.Unlock()
	if br, ok := c.m[r]; ok {
		return br
	}
	br := bufio.NewReader(r)
	c.m[r] = br
	return br
}

// testEngineAPI checks the API's answers to bad requests and that a client
// vanishing mid-stream leaves the daemon serving.
func testEngineAPI(t *testing.T, d *engineDaemon) {
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.sock)
	}}}
	defer hc.CloseIdleConnections()
	do := func(method, path string, body io.Reader) (int, string) {
		req, _ := http.NewRequest(method, "http://engine"+path, body)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var er struct {
			Message string `json:"message"`
		}
		if resp.StatusCode >= 400 {
			if err := json.Unmarshal(b, &er); err != nil || er.Message == "" {
				t.Errorf("%s %s: status %d with a body that is not a JSON error: %q", method, path, resp.StatusCode, b)
			}
		}
		return resp.StatusCode, er.Message
	}
	for _, tc := range []struct {
		method, path string
		body         io.Reader
		status       int
		msg          string
	}{
		{"GET", "/v1/no/such/route", nil, 404, "no route"},
		{"POST", "/v1/containers", strings.NewReader(`{"image": `), 400, "malformed JSON"},
		{"POST", "/v1/containers", strings.NewReader(`{"image": 3}`), 400, "malformed JSON"},
		{"POST", "/v1/containers", bytes.NewReader(append([]byte(`{"name":"`), bytes.Repeat([]byte("a"), 2<<20)...)), 413, "larger than the limit"},
		{"POST", "/v1/containers", strings.NewReader(`{"image":"` + testEnv.ImageRef + `","restart":{"name":"sometimes"}}`), 400, ""},
		{"GET", "/v1/containers/nosuch", nil, 404, "No such container: nosuch"},
		{"GET", "/v1/containers/nosuch/logs", nil, 404, "No such container: nosuch"},
	} {
		status, msg := do(tc.method, tc.path, tc.body)
		if status != tc.status || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s %s: %d %q, want %d with %q", tc.method, tc.path, status, msg, tc.status, tc.msg)
		}
	}
	// A client that goes away in the middle of a followed event stream.
	for i := 0; i < 5; i++ {
		conn, err := net.Dial("unix", d.sock)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET /v1/events?since=%d HTTP/1.1\r\nHost: engine\r\n\r\n", time.Now().Add(-time.Hour).Unix())
		br := bufio.NewReader(conn)
		line, err := engineReadLine(br, 10*time.Second)
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
			t.Fatalf("events stream: %q %v", line, err)
		}
		conn.Close()
	}
	if status, _ := do("GET", "/v1/version", nil); status != 200 {
		t.Fatalf("daemon not serving after clients vanished: %d", status)
	}
	if _, err := os.Stat(filepath.Dir(d.sock)); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(d.sock); err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, %v: want 0660", fi.Mode().Perm(), err)
	}
}

// testEngineTTY runs `engine run -it` on a pseudo-terminal and uses the
// shell in the container like a person would.
func testEngineTTY(t *testing.T, d *engineDaemon, img string) {
	master, slaveName, err := engineOpenPTY()
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	defer master.Close()
	slave, err := os.OpenFile(slaveName, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 100}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(d.bin, "-H", d.sock, "run", "-it", "--rm", "--name", "tty", img, "sh")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	exited := make(chan error, 1)
	waited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		close(waited)
		exited <- err
	}()
	defer func() {
		select {
		case <-waited:
		default:
			_ = cmd.Process.Kill()
			select {
			case <-waited:
			case <-time.After(10 * time.Second):
				t.Errorf("engine run -it (pid %d) still not reaped 10s after SIGKILL", cmd.Process.Pid)
			}
			d.run(t, nil, "rm", "-f", "tty")
		}
	}()

	var out testutil.Buffer
	changed := make(chan struct{}, 1)
	go func() { // ends when master is closed or the session ends
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			if n > 0 {
				out.Write(buf[:n])
				select {
				case changed <- struct{}{}:
				default:
				}
			}
			if err != nil {
				return
			}
		}
	}()
	expect := func(re string) {
		t.Helper()
		r := regexp.MustCompile(re)
		deadline := time.After(20 * time.Second)
		for !r.MatchString(out.String()) {
			select {
			case <-changed:
			case <-deadline:
				t.Fatalf("terminal never showed %q; it shows:\n%s", re, out.String())
			}
		}
	}
	send := func(s string) {
		if _, err := master.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	send("echo $((6*7))X\r")
	expect(`42X`)
	send("stty size\r")
	expect(`40 100`)
	// A resize reaches the container's terminal (SIGWINCH to the CLI).
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 77}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "33 77") {
		if time.Now().After(deadline) {
			t.Fatalf("resize never reached the container:\n%s", out.String())
		}
		send("stty size\r")
		select {
		case <-changed:
		case <-time.After(time.Second):
		}
	}
	// Ctrl-C interrupts the foreground command in the container, not the CLI.
	send("sleep 100\r")
	// Interrupt once sleep runs: a ^C typed earlier is line editing.
	enginePoll(t, 20*time.Second, "sleep to run in the tty container", func() bool {
		_, _, code := d.run(t, nil, "exec", "tty", "pidof", "sleep")
		return code == 0
	})
	send("\x03")
	send("echo after-$((1+1))\r")
	expect(`after-2`)
	send("exit 7\r")
	select {
	case err := <-exited:
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
			t.Fatalf("run -it exit: %v, want status 7\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
		t.Fatalf("run -it did not exit after `exit 7` (process: %s); the terminal shows:\n%s", st, out.String())
	}
}

// engineOpenPTY opens a pseudo-terminal pair's master and returns the slave's path.
func engineOpenPTY() (*os.File, string, error) {
	// Non-blocking, so that the runtime poller serves reads and Close
	// interrupts a pending one.
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, "", err
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(fd)
		return nil, "", err
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		unix.Close(fd)
		return nil, "", err
	}
	return os.NewFile(uintptr(fd), "/dev/ptmx"), fmt.Sprintf("/dev/pts/%d", n), nil
}
