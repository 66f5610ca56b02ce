package integration

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

const composeFile = `version: "3.8"
services:
  web:
    image: busybox:latest
    command: ["sh", "-c", "echo web-up; exec httpd -f -p 8080"]
    labels:
      tier: front
  worker:
    image: busybox:latest
    command: ["sh", "-c", "echo worker-up; exec sleep 1000"]
    depends_on: [web]
    environment:
      ROLE: worker
`

// TestDockerCompose runs a two-service compose file through Debian's
// docker-compose (1.29, installed by scripts/setup.sh) against the engine's
// Docker API: up -d, ps, logs, down. Compose 1.29 asks for the API version
// of its file format (1.38 for 3.8), older than tend's oldest (1.41):
// COMPOSE_API_VERSION=auto makes it negotiate, as the README says.
func TestDockerCompose(t *testing.T) {
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Skip("docker-compose is not installed: run scripts/setup.sh (it installs Debian's docker-compose)")
	}
	d, cli := startDockerEngine(t, "dcompose")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
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

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(composeFile), 0o644); err != nil {
		t.Fatal(err)
	}
	compose := func(args ...string) (string, int) {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(cctx, bin, append([]string{"-p", "tendc", "--ansi", "never"}, args...)...)
		cmd.Dir = dir
		cmd.Env = []string{"DOCKER_HOST=unix://" + d.dockerSocket(), "COMPOSE_API_VERSION=auto", "HOME=" + dir, "PATH=" + os.Getenv("PATH")}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("docker-compose %v: %v", args, err)
		}
		return out.String(), code
	}
	must := func(args ...string) string {
		t.Helper()
		out, code := compose(args...)
		if code != 0 {
			t.Fatalf("docker-compose %v: exit %d\n%s", args, code, out)
		}
		return out
	}
	defer compose("down", "--timeout", "1")

	must("up", "-d")
	enginePoll(t, 2*time.Minute, "both services up in docker-compose ps", func() bool {
		out, _ := compose("ps")
		return regexp.MustCompile(`tendc_web_1 .* Up`).MatchString(out) && regexp.MustCompile(`tendc_worker_1 .* Up`).MatchString(out)
	})
	enginePoll(t, time.Minute, "both services' output in docker-compose logs", func() bool {
		out, _ := compose("logs")
		return strings.Contains(out, "web-up") && strings.Contains(out, "worker-up")
	})
	if out := must("exec", "-T", "worker", "sh", "-c", "echo $ROLE"); strings.TrimSpace(out) != "worker" {
		t.Errorf("docker-compose exec: %q", out)
	}
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{Filters: make(client.Filters).Add("label", "com.docker.compose.project=tendc")})
	if err != nil || len(list.Items) != 2 {
		t.Errorf("containers of the project: %+v, %v", list, err)
	}
	must("down", "--timeout", "1")
	list, err = cli.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil || len(list.Items) != 0 {
		t.Errorf("containers after down: %+v, %v", list.Items, err)
	}
	nets, err := cli.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nets.Items {
		if strings.HasPrefix(n.Name, "tendc") {
			t.Errorf("network %s left after down", n.Name)
		}
	}
}
