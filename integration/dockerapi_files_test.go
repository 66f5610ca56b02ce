package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// tarFile is a tar stream of one file.
func tarFile(t testing.TB, name, content string) *bytes.Buffer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg, ModTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(tw, content); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &b
}

// tarEntries reads a tar stream into name -> content (directories: "").
func tarEntries(t testing.TB, r io.Reader) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		b, _ := io.ReadAll(tr)
		out[hdr.Name] = string(b)
	}
}

// TestDockerAPISDKFiles drives rename, update, archive (cp), export and
// changes with the Docker Go SDK.
func TestDockerAPISDKFiles(t *testing.T) {
	d, cli := startDockerEngine(t, "dfiles")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f, err := os.Open(engineImage(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := cli.ImageLoad(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	loaded, _ := io.ReadAll(res)
	res.Close()
	if !strings.Contains(string(loaded), "Loaded image") {
		t.Fatalf("image load: %s", loaded)
	}

	cr, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: "files", Config: &container.Config{Image: "busybox:latest", Cmd: []string{"sleep", "1000"}}})
	if err != nil {
		t.Fatal(err)
	}
	id := cr.ID
	defer cli.ContainerRemove(context.Background(), id, client.ContainerRemoveOptions{Force: true})

	t.Run("CopyIntoCreated", func(t *testing.T) {
		// Into a container not started yet: its snapshot.
		if _, err := cli.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: "/tmp", Content: tarFile(t, "early.txt", "before start\n")}); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("Archive", func(t *testing.T) {
		if _, err := cli.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: "/tmp", Content: tarFile(t, "hello.txt", "hello tend\n")}); err != nil {
			t.Fatal(err)
		}
		st, err := cli.ContainerStatPath(ctx, id, client.ContainerStatPathOptions{Path: "/tmp/hello.txt"})
		if err != nil || st.Stat.Name != "hello.txt" || st.Stat.Size != int64(len("hello tend\n")) || !st.Stat.Mode.IsRegular() || st.Stat.Mtime.IsZero() {
			t.Errorf("stat /tmp/hello.txt: %+v, %v", st, err)
		}
		st, err = cli.ContainerStatPath(ctx, id, client.ContainerStatPathOptions{Path: "/tmp"})
		if err != nil || !st.Stat.Mode.IsDir() {
			t.Errorf("stat /tmp: %+v, %v", st, err)
		}
		if _, err := cli.ContainerStatPath(ctx, id, client.ContainerStatPathOptions{Path: "/nosuch"}); !cerrdefs.IsNotFound(err) {
			t.Errorf("stat /nosuch: %v, want not found", err)
		}
		got, err := cli.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: "/tmp"})
		if err != nil {
			t.Fatal(err)
		}
		ents := tarEntries(t, got.Content)
		got.Content.Close()
		if got.Stat.Name != "tmp" || !got.Stat.Mode.IsDir() || ents["tmp/hello.txt"] != "hello tend\n" || ents["tmp/early.txt"] != "before start\n" {
			t.Errorf("copy /tmp out: stat %+v, entries %v", got.Stat, ents)
		}
		if _, err := cli.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: "/nosuchdir", Content: tarFile(t, "x", "x")}); !cerrdefs.IsNotFound(err) {
			t.Errorf("copy into a missing directory: %v, want not found", err)
		}
	})

	t.Run("Changes", func(t *testing.T) {
		res, err := cli.ContainerDiff(ctx, id, client.ContainerDiffOptions{})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, c := range res.Changes {
			if c.Path == "/tmp/hello.txt" && c.Kind == container.ChangeAdd {
				found = true
			}
		}
		if !found {
			t.Errorf("changes: %+v, want /tmp/hello.txt added", res.Changes)
		}
	})

	t.Run("Export", func(t *testing.T) {
		rc, err := cli.ContainerExport(ctx, id, client.ContainerExportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ents := tarEntries(t, rc)
		rc.Close()
		if _, ok := ents["bin/busybox"]; !ok || ents["tmp/hello.txt"] != "hello tend\n" {
			t.Errorf("export: %d entries, bin/busybox %v, tmp/hello.txt %q", len(ents), ok, ents["tmp/hello.txt"])
		}
	})

	t.Run("Rename", func(t *testing.T) {
		if _, err := cli.ContainerRename(ctx, id, client.ContainerRenameOptions{NewName: "files2"}); err != nil {
			t.Fatal(err)
		}
		ins, err := cli.ContainerInspect(ctx, "files2", client.ContainerInspectOptions{})
		if err != nil || ins.Container.Name != "/files2" {
			t.Errorf("inspect files2: %+v, %v", ins.Container.Name, err)
		}
		other, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: "other", Config: &container.Config{Image: "busybox:latest"}})
		if err != nil {
			t.Fatal(err)
		}
		defer cli.ContainerRemove(context.Background(), other.ID, client.ContainerRemoveOptions{Force: true})
		if _, err := cli.ContainerRename(ctx, "other", client.ContainerRenameOptions{NewName: "files2"}); !cerrdefs.IsConflict(err) {
			t.Errorf("rename onto a used name: %v, want a conflict", err)
		}
	})

	t.Run("Update", func(t *testing.T) {
		pids := int64(64)
		up, err := cli.ContainerUpdate(ctx, id, client.ContainerUpdateOptions{
			Resources:     &container.Resources{Memory: 64 << 20, NanoCPUs: 5e8, PidsLimit: &pids},
			RestartPolicy: &container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 2},
		})
		if err != nil {
			t.Fatalf("update: %+v, %v", up, err)
		}
		ins, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		hc := ins.Container.HostConfig
		if hc.Memory != 64<<20 || hc.NanoCPUs != 5e8 || hc.PidsLimit == nil || *hc.PidsLimit != 64 || hc.RestartPolicy.Name != "on-failure" || hc.RestartPolicy.MaximumRetryCount != 2 {
			t.Errorf("after update: memory %d, nanocpus %d, pids %v, restart %+v", hc.Memory, hc.NanoCPUs, hc.PidsLimit, hc.RestartPolicy)
		}
		// Only what is sent changes.
		if _, err := cli.ContainerUpdate(ctx, id, client.ContainerUpdateOptions{Resources: &container.Resources{Memory: 32 << 20}}); err != nil {
			t.Fatal(err)
		}
		ins, _ = cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if hc := ins.Container.HostConfig; hc.Memory != 32<<20 || hc.NanoCPUs != 5e8 || hc.RestartPolicy.Name != "on-failure" {
			t.Errorf("after a memory-only update: memory %d, nanocpus %d, restart %+v", hc.Memory, hc.NanoCPUs, hc.RestartPolicy)
		}
		// The running container's cgroup has the new limit.
		st, err := cli.ContainerStats(ctx, id, client.ContainerStatsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var stats container.StatsResponse
		err = json.NewDecoder(st.Body).Decode(&stats)
		st.Body.Close()
		if err != nil || stats.MemoryStats.Limit != 32<<20 {
			t.Errorf("the running container's memory limit after update: %d, %v; want %d", stats.MemoryStats.Limit, err, 32<<20)
		}
		_, err = cli.ContainerUpdate(ctx, id, client.ContainerUpdateOptions{Resources: &container.Resources{CPUShares: 512}})
		if !cerrdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "CpuShares") {
			t.Errorf("update CpuShares: %v, want 400 naming it", err)
		}
	})

	t.Run("NetworkConnect", func(t *testing.T) {
		// To its own network: a no-op, as compose 1.x asks it.
		if code, resp := dockerRaw(t, d.dockerSocket(), "POST", "/v1.56/networks/bridge/connect", strings.NewReader(`{"Container":"files2"}`)); code != 200 {
			t.Errorf("connect to its own network: %d %s, want 200", code, resp)
		}
		if _, err := cli.NetworkCreate(ctx, "other-net", client.NetworkCreateOptions{}); err != nil {
			t.Fatal(err)
		}
		defer cli.NetworkRemove(context.Background(), "other-net", client.NetworkRemoveOptions{})
		code, resp := dockerRaw(t, d.dockerSocket(), "POST", "/v1.56/networks/other-net/connect", strings.NewReader(`{"Container":"files2"}`))
		if code != 501 || !strings.Contains(resp, "docker run --network") {
			t.Errorf("connect to another network: %d %s, want 501 saying what to do", code, resp)
		}
		code, resp = dockerRaw(t, d.dockerSocket(), "POST", "/v1.56/networks/bridge/disconnect", strings.NewReader(`{"Container":"files2"}`))
		if code != 501 {
			t.Errorf("disconnect: %d %s, want 501", code, resp)
		}
	})
}
