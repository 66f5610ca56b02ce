package integration

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestEngineDockerCLI drives the docker-CLI commands and formats of issue
// 17 through the real binary against a real daemon, asserting docker's
// output shapes.
func TestEngineDockerCLI(t *testing.T) {
	root, err := os.MkdirTemp(testEnv.Root, "dcli-")
	if err != nil {
		t.Fatal(err)
	}
	d := startEngine(t, root, testEnv.Namespace+"-dcli")
	t.Cleanup(func() { cleanupEngine(t, d) })
	d.must(t, "image", "import", engineImage(t))
	img := testEnv.ImageRef

	d.must(t, "run", "-d", "--name", "dweb", "--label", "app=web", "--health-cmd", "true", "--health-interval", "1s", img, "sh", "-c", "echo hi; exec sleep 100000")
	if _, _, code := d.run(t, nil, "run", "--name", "dexit", img, "sh", "-c", "exit 7"); code != 7 {
		t.Fatalf("run exit 7: %d", code)
	}

	t.Run("PsTemplatesAndFilters", func(t *testing.T) {
		out := d.must(t, "ps", "-a", "--filter", "name=dexit", "--format", "{{.Names}}|{{.Command}}|{{.Status}}|{{.Image}}")
		if !regexp.MustCompile(`^dexit\|"sh -c 'exit 7'"\|Exited \(7\) .* ago\|` + regexp.QuoteMeta(img) + "\n$").MatchString(out) {
			t.Errorf("ps template: %q", out)
		}
		out = d.must(t, "ps", "--format", "table {{.Names}}\t{{.Label \"app\"}}", "--filter", "label=app=web")
		if !regexp.MustCompile(`^NAMES\s+app\ndweb\s+web\n$`).MatchString(out) {
			t.Errorf("ps table template: %q", out)
		}
		if out := d.must(t, "ps", "-a", "-q", "--filter", "exited=7"); len(strings.Fields(out)) != 1 {
			t.Errorf("ps --filter exited=7: %q", out)
		}
		if out := d.must(t, "ps", "-a", "--format", "{{.Names}}", "--filter", "status=exited", "--filter", "ancestor="+img); strings.TrimSpace(out) != "dexit" {
			t.Errorf("ps status+ancestor: %q", out)
		}
		if out := d.must(t, "ps", "-l", "--format", "{{.Names}}"); out != "dexit\n" {
			t.Errorf("ps -l: %q", out)
		}
		if out := d.must(t, "ps", "-n", "2", "-q"); len(strings.Fields(out)) != 2 {
			t.Errorf("ps -n 2: %q", out)
		}
		if out := d.must(t, "ps", "--format", "{{.Names}}", "--filter", "before=dexit", "-a"); strings.TrimSpace(out) != "dweb" {
			t.Errorf("ps before=dexit: %q", out)
		}
		if out := d.must(t, "ps", "-a", "-s", "--filter", "name=dexit"); !strings.Contains(strings.Split(out, "\n")[0], "SIZE") || !strings.Contains(out, "(virtual ") {
			t.Errorf("ps -s: %q", out)
		}
		enginePoll(t, 20e9, "healthy", func() bool {
			return d.must(t, "ps", "-q", "--filter", "health=healthy", "--filter", "name=dweb") != ""
		})
		d.expectFail(t, 125, "template parsing error", "ps", "--format", "{{.Nope")
	})

	t.Run("InspectDockerShape", func(t *testing.T) {
		out := d.must(t, "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}} {{.Config.Image}} {{.Name}}", "dexit")
		if out != "exited 7 0 "+img+" /dexit\n" {
			t.Errorf("inspect --format: %q", out)
		}
		enginePoll(t, 20e9, "healthy", func() bool {
			return d.must(t, "inspect", "-f", "{{.State.Health.Status}}", "dweb") == "healthy\n"
		})
		var recs []struct {
			ID     string `json:"Id"`
			State  struct{ Status string }
			Config struct {
				Labels map[string]string
			}
			HostConfig struct {
				RestartPolicy struct{ Name string }
			}
		}
		if err := json.Unmarshal([]byte(d.must(t, "inspect", "dweb")), &recs); err != nil || len(recs) != 1 || recs[0].State.Status != "running" || recs[0].Config.Labels["app"] != "web" || recs[0].HostConfig.RestartPolicy.Name != "no" {
			t.Errorf("inspect JSON: %+v, %v", recs, err)
		}
	})

	t.Run("EventsWindow", func(t *testing.T) {
		out := d.must(t, "events", "--since", "10m", "--until", "0s", "--filter", "type=container", "--filter", "event=die", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}")
		if out != "container die dexit 7\n" {
			t.Errorf("events window: %q", out)
		}
		if out := d.must(t, "events", "--since", "10m", "--until", "0s", "--filter", "label=app=web", "--filter", "event=create", "--format", "{{.Actor.Attributes.name}}"); out != "dweb\n" {
			t.Errorf("events label filter: %q", out)
		}
		d.expectFail(t, 1, "event=die", "events", "--since", "1m", "--until", "0s", "--filter", "type=die")
	})

	t.Run("ExecExitCodes", func(t *testing.T) {
		d.expectFail(t, 1, "not running", "exec", "dexit", "true")
		d.expectFail(t, 126, "Error:", "exec", "dweb", "no-such-command")
		d.must(t, "pause", "dweb")
		d.expectFail(t, 1, "paused", "exec", "dweb", "true")
		d.must(t, "unpause", "dweb")
	})

	t.Run("CpDiffExport", func(t *testing.T) {
		local := t.TempDir()
		if err := os.WriteFile(filepath.Join(local, "in.txt"), []byte("into the box\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		// In and out of a running container.
		d.must(t, "cp", filepath.Join(local, "in.txt"), "dweb:/tmp/")
		if out := d.must(t, "exec", "dweb", "cat", "/tmp/in.txt"); out != "into the box\n" {
			t.Errorf("cp in: %q", out)
		}
		d.must(t, "cp", "dweb:/tmp/in.txt", filepath.Join(local, "back.txt"))
		if b, err := os.ReadFile(filepath.Join(local, "back.txt")); err != nil || string(b) != "into the box\n" {
			t.Errorf("cp out: %q, %v", b, err)
		}
		// Out of a stopped container, as a tar on stdout.
		out := d.must(t, "cp", "dexit:/etc/passwd", "-")
		tr := tar.NewReader(strings.NewReader(out))
		if hdr, err := tr.Next(); err != nil || hdr.Name != "passwd" {
			t.Errorf("cp out -: %v, %v", hdr, err)
		}
		// Into a stopped container from a tar on stdin.
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: "new.txt", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
		io.WriteString(tw, "new")
		tw.Close()
		if _, errs, code := d.run(t, &buf, "cp", "-", "dexit:/"); code != 0 {
			t.Fatalf("cp - dexit:/: %d %s", code, errs)
		}
		if out := d.must(t, "diff", "dexit"); !regexp.MustCompile(`(?m)^A /new.txt$`).MatchString(out) {
			t.Errorf("diff after cp: %q", out)
		}
		if out := d.must(t, "diff", "dweb"); !regexp.MustCompile(`(?m)^A /tmp/in.txt$`).MatchString(out) {
			t.Errorf("diff of the running container: %q", out)
		}
		exp := filepath.Join(local, "x.tar")
		d.must(t, "export", "-o", exp, "dexit")
		f, err := os.Open(exp)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		names := map[string]bool{}
		tr = tar.NewReader(f)
		for {
			hdr, err := tr.Next()
			if err != nil {
				break
			}
			names[hdr.Name] = true
		}
		if !names["new.txt"] || !names["bin/"] {
			t.Errorf("export lacks new.txt or bin/: %d entries", len(names))
		}
		d.expectFail(t, 1, "Could not find the file", "cp", "dexit:/no/such", local)
	})

	t.Run("RenameUpdateLogs", func(t *testing.T) {
		d.must(t, "rename", "dweb", "dweb2")
		if out := d.must(t, "ps", "--format", "{{.Names}}", "--filter", "label=app=web"); out != "dweb2\n" {
			t.Errorf("after rename: %q", out)
		}
		d.expectFail(t, 1, "in use", "rename", "dweb2", "dexit")
		d.must(t, "update", "--memory", "96m", "--restart", "on-failure:2", "dweb2")
		if out := d.must(t, "inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}", "dweb2"); out != "100663296 on-failure 2\n" {
			t.Errorf("after update: %q", out)
		}
		if out := d.must(t, "stats", "--no-stream", "--format", "{{.MemUsage}}", "dweb2"); !strings.HasSuffix(out, " / 96MiB\n") {
			t.Errorf("stats after update: %q", out)
		}
		// --details puts the line's attributes (none here) and a space first, as docker.
		if out := d.must(t, "logs", "--until", "0s", "--details", "dweb2"); out != " hi\n" {
			t.Errorf("logs --until: %q", out)
		}
		if out := d.must(t, "logs", "--until", "2000-01-01T00:00:00Z", "dweb2"); out != "" {
			t.Errorf("logs --until in the past: %q", out)
		}
	})

	t.Run("SystemDfAndPrune", func(t *testing.T) {
		out := d.must(t, "system", "df")
		if !regexp.MustCompile(`^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE\nImages\s+1\s+1\s+\S+\s+.*\nContainers\s+2\s+1\s+`).MatchString(out) {
			t.Errorf("system df: %q", out)
		}
		out = d.must(t, "container", "prune", "-f")
		if !strings.Contains(out, "Deleted Containers:") || !strings.Contains(out, "Total reclaimed space:") {
			t.Errorf("container prune: %q", out)
		}
		if out := d.must(t, "ps", "-aq"); len(strings.Fields(out)) != 1 {
			t.Errorf("after prune: %q", out)
		}
		if out := d.must(t, "system", "prune", "-f"); !strings.Contains(out, "Total reclaimed space:") {
			t.Errorf("system prune: %q", out)
		}
	})

	t.Run("HelpAndCompletion", func(t *testing.T) {
		out := d.must(t, "--help")
		for _, c := range []string{"rename", "update", "container", "system", "cp", "diff", "export", "stats", "completion"} {
			if !regexp.MustCompile(`(?m)^  ` + c + `\s`).MatchString(out) {
				t.Errorf("engine --help lacks %s", c)
			}
		}
		for _, sh := range []string{"bash", "zsh", "fish"} {
			if out := d.must(t, "completion", sh); !strings.Contains(out, "engine") {
				t.Errorf("completion %s: %.80q", sh, out)
			}
		}
		if out := d.must(t, "ps", "--help"); !strings.Contains(out, "Examples:") {
			t.Errorf("ps --help has no examples")
		}
	})
	d.must(t, "rm", "-f", "dweb2")
}
