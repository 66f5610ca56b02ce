package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/tendhq/tend/backend"
)

// pushTestImage tags the test image as ref in env's engine and pushes it.
func pushTestImage(t *testing.T, env *engineEnv, ref string, creds backend.Credentials) {
	t.Helper()
	ctx := testCtx(t)
	if _, err := env.e.TagImage(ctx, testEnv.ImageRef, ref); err != nil {
		t.Fatalf("TagImage: %v", err)
	}
	log := newProgressLog()
	if err := env.e.PushImage(ctx, ref, backend.PushOptions{Credentials: creds}, log.add); err != nil {
		t.Fatalf("PushImage %s: %v", ref, err)
	}
	if !log.has("Pushed") || !log.has("v1: digest: sha256:") {
		t.Errorf("push progress %q: want Pushed and the digest line", log.statuses())
	}
}

// runEcho runs image with echo in env and checks its output.
func runEcho(t *testing.T, env *engineEnv, image string) {
	t.Helper()
	c := env.run(backend.CreateOptions{Image: image, Cmd: []string{"echo", "from-registry"}})
	code, err := env.e.Wait(testCtx(t), c.ID, backend.WaitNotRunning)
	if err != nil || code != 0 {
		t.Fatalf("container of %s: exit %d, %v", image, code, err)
	}
	if out := env.logText(c.ID); !strings.Contains(out, "from-registry") {
		t.Fatalf("container of %s logged %q", image, out)
	}
}

func freshEngine(t *testing.T, suffix string, mod func(*backend.Config)) *engineEnv {
	ns := freshNamespace(t, suffix)
	return newEngineEnv(t, func(c *backend.Config) {
		c.Namespace = ns
		if mod != nil {
			mod(c)
		}
	})
}

func TestRegistryPushPullRun(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	src := newEngineEnv(t, nil)
	ref := reg.host + "/tend/busybox:v1"
	pushTestImage(t, src, ref, nil)

	dst := freshEngine(t, "pull", nil)
	log := newProgressLog()
	img, err := dst.e.PullImage(testCtx(t), ref, backend.PullOptions{}, log.add)
	if err != nil {
		t.Fatalf("PullImage: %v", err)
	}
	if img.Ref != ref || img.Size == 0 {
		t.Errorf("pulled %+v", img)
	}
	listed, err := dst.e.Images(testCtx(t))
	if err != nil || len(listed) != 1 || listed[0].Size != img.Size || listed[0].Digest != img.Digest {
		t.Errorf("images after the pull %+v (%v): want the pulled %+v, of the same size", listed, err, img)
	}
	for _, want := range []string{"Pulling from tend/busybox", "Pull complete", "Digest: sha256:", "Status: Downloaded newer image for " + ref} {
		if !log.has(want) {
			t.Errorf("progress %q lacks %q", log.statuses(), want)
		}
	}
	// containerd shares content between namespaces: the layer of the test
	// image, imported into another one, may be found there.
	if !log.has("Pulling fs layer") && !log.has("Already exists") {
		t.Errorf("progress %q: no layer line", log.statuses())
	}
	runEcho(t, dst, ref)

	// Again: up to date, nothing downloaded.
	log = newProgressLog()
	if _, err := dst.e.PullImage(testCtx(t), ref, backend.PullOptions{}, log.add); err != nil {
		t.Fatalf("second PullImage: %v", err)
	}
	if !log.has("Status: Image is up to date") {
		t.Errorf("second pull progress %q: want up to date", log.statuses())
	}
	// An unknown tag is not found.
	_, err = dst.e.PullImage(testCtx(t), reg.host+"/tend/busybox:nope", backend.PullOptions{}, nil)
	if !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "not found") {
		t.Errorf("pull of an unknown tag: %v, want not found", err)
	}
}

func TestRegistryAuthTLS(t *testing.T) {
	reg := startRegistry(t, registryOpts{auth: true, tls: true})
	certs := reg.certsDir()
	withCerts := func(c *backend.Config) { c.Registry.CertsDir = certs }
	src := newEngineEnv(t, withCerts)
	ctx := testCtx(t)
	ref := reg.host + "/private/busybox:v1"
	if _, err := src.e.TagImage(ctx, testEnv.ImageRef, ref); err != nil {
		t.Fatal(err)
	}
	err := src.e.PushImage(ctx, ref, backend.PushOptions{}, nil)
	if !errdefs.IsUnauthorized(err) || !strings.Contains(err.Error(), "engine login "+reg.host) {
		t.Fatalf("anonymous push: %v, want unauthenticated naming engine login", err)
	}
	if err := src.e.Login(ctx, reg.host, reg.user, "wrong"); !errdefs.IsUnauthorized(err) {
		t.Fatalf("Login with a wrong password: %v, want unauthenticated", err)
	}
	if err := src.e.Login(ctx, reg.host, reg.user, reg.password); err != nil {
		t.Fatalf("Login: %v", err)
	}
	pushTestImage(t, src, ref, reg.creds())

	dst := freshEngine(t, "auth", withCerts)
	_, err = dst.e.PullImage(testCtx(t), ref, backend.PullOptions{}, nil)
	if !errdefs.IsUnauthorized(err) || !strings.Contains(err.Error(), "engine login") {
		t.Fatalf("anonymous pull: %v, want unauthenticated naming engine login", err)
	}
	if _, err := dst.e.PullImage(testCtx(t), ref, backend.PullOptions{Credentials: reg.creds()}, nil); err != nil {
		t.Fatalf("PullImage with credentials: %v", err)
	}
	runEcho(t, dst, ref)
}

// leasesOf lists the leases of namespace ns.
func leasesOf(t *testing.T, ns string) []leases.Lease {
	t.Helper()
	c, err := containerd.New(testEnv.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ls, err := c.LeasesService().List(namespaces.WithNamespace(context.Background(), ns))
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func TestRegistryStoppedMidPull(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	proxy := startProxy(t, reg.host)
	// Random blobs: containerd shares content between namespaces, so the
	// test image would be found without a download.
	pushRandomImage(t, reg.host, "tend/random", "v1", 3, 256<<10)
	ref := proxy.host + "/tend/random:v1"

	ns := freshNamespace(t, "midpull")
	dst := newEngineEnv(t, func(c *backend.Config) { c.Namespace = ns })
	held := proxy.holdBlobs()
	errc := make(chan error, 1)
	go func() {
		_, err := dst.e.PullImage(testCtx(t), ref, backend.PullOptions{}, nil)
		errc <- err
	}()
	waitClosed(t, held, "the pull to download a blob")
	reg.stop()
	proxy.release()
	err := <-errc
	if !errdefs.IsUnavailable(err) || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("pull with the registry stopped: %v, want unavailable saying unreachable", err)
	}
	t.Logf("the pull failed as wanted: %v", err)
	if ls := leasesOf(t, ns); len(ls) != 0 {
		t.Errorf("the failed pull left leases %v", ls)
	}
	reg.start()
	if _, err := dst.e.PullImage(testCtx(t), ref, backend.PullOptions{}, nil); err != nil {
		t.Fatalf("retry of the pull: %v", err)
	}
}

// waitClosed waits up to a minute for ch to be closed.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(time.Minute):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestRegistryConcurrentPullsShareDownload(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	proxy := startProxy(t, reg.host)
	pushRandomImage(t, reg.host, "tend/random", "v1", 3, 256<<10)
	ref := proxy.host + "/tend/random:v1"

	dst := freshEngine(t, "shared", nil)
	held := proxy.holdBlobs()
	logs := []*progressLog{newProgressLog(), newProgressLog()}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	pull := func(i int) {
		defer wg.Done()
		_, errs[i] = dst.e.PullImage(testCtx(t), ref, backend.PullOptions{}, logs[i].add)
	}
	wg.Add(1)
	go pull(0)
	waitClosed(t, held, "the first pull to download a blob")
	wg.Add(1)
	go pull(1)
	waitClosed(t, logs[1].any, "the second pull to join the first")
	proxy.release()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("pull %d: %v", i, err)
		}
		if !logs[i].has("Digest: sha256:") {
			t.Errorf("pull %d progress %q: want the digest", i, logs[i].statuses())
		}
	}
	gets := proxy.blobGets()
	if len(gets) == 0 {
		t.Fatal("no blob was downloaded")
	}
	for path, n := range gets {
		if n != 1 {
			t.Errorf("blob %s downloaded %d times, want once for both pulls", path, n)
		}
	}
}

func tarNames(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	out := make(map[string][]byte)
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		data, _ := io.ReadAll(tr)
		out[h.Name] = data
	}
}

func TestImageSaveLoadRoundTrip(t *testing.T) {
	src := newEngineEnv(t, nil)
	var buf bytes.Buffer
	if err := src.e.SaveImages(testCtx(t), []string{"busybox"}, &buf); err != nil {
		t.Fatalf("SaveImages: %v", err)
	}
	files := tarNames(t, buf.Bytes())
	for _, want := range []string{"manifest.json", "repositories", "index.json", "oci-layout"} {
		if _, ok := files[want]; !ok {
			t.Errorf("saved archive lacks %s", want)
		}
	}
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 || len(manifest[0].Layers) == 0 {
		t.Fatalf("manifest.json %s: %v", files["manifest.json"], err)
	}
	if len(manifest[0].RepoTags) != 1 || manifest[0].RepoTags[0] != "busybox:latest" {
		t.Errorf("manifest.json RepoTags %v, want busybox:latest", manifest[0].RepoTags)
	}
	var repos map[string]map[string]string
	if err := json.Unmarshal(files["repositories"], &repos); err != nil || repos["docker.io/library/busybox"]["latest"] == "" {
		t.Errorf("repositories %s: %v", files["repositories"], err)
	}

	dst := freshEngine(t, "load", nil)
	log := newProgressLog()
	imgs, err := dst.e.LoadImages(testCtx(t), bytes.NewReader(buf.Bytes()), log.add)
	if err != nil || len(imgs) != 1 || imgs[0].Ref != testEnv.ImageRef {
		t.Fatalf("LoadImages: %v, %v", imgs, err)
	}
	if !log.has("Loaded image: " + testEnv.ImageRef) {
		t.Errorf("load progress %q", log.statuses())
	}
	runEcho(t, dst, testEnv.ImageRef)
}

// dockerArchiveFromOCI rewrites the test image's OCI archive as a legacy
// docker save archive: manifest.json, <config>.json, <layer>/layer.tar
// and repositories, without index.json.
func dockerArchiveFromOCI(t *testing.T, oci []byte, repoTag string) []byte {
	t.Helper()
	files := tarNames(t, oci)
	blob := func(d string) []byte {
		b, ok := files["blobs/"+strings.Replace(d, ":", "/", 1)]
		if !ok {
			t.Fatalf("OCI archive lacks blob %s", d)
		}
		return b
	}
	var idx ocispec.Index
	if err := json.Unmarshal(files["index.json"], &idx); err != nil || len(idx.Manifests) == 0 {
		t.Fatalf("index.json: %v", err)
	}
	desc := idx.Manifests[0]
	var m ocispec.Manifest
	if err := json.Unmarshal(blob(desc.Digest.String()), &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) == 0 {
		// An index: take its first manifest.
		var inner ocispec.Index
		if err := json.Unmarshal(blob(desc.Digest.String()), &inner); err != nil || len(inner.Manifests) == 0 {
			t.Fatalf("manifest %s: %v", desc.Digest, err)
		}
		if err := json.Unmarshal(blob(inner.Manifests[0].Digest.String()), &m); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	add := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
	}
	cfgName := m.Config.Digest.Encoded() + ".json"
	add(cfgName, blob(m.Config.Digest.String()))
	var layers []string
	for _, l := range m.Layers {
		name := l.Digest.Encoded() + "/layer.tar"
		add(name, blob(l.Digest.String()))
		layers = append(layers, name)
	}
	mj, _ := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{repoTag}, "Layers": layers}})
	add("manifest.json", mj)
	repo, tag, _ := strings.Cut(repoTag, ":")
	rj, _ := json.Marshal(map[string]map[string]string{repo: {tag: m.Config.Digest.Encoded()}})
	add("repositories", rj)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestImageLoadDockerArchive(t *testing.T) {
	archive := os.Getenv("TEND_TEST_IMAGE")
	if archive == "" {
		archive = filepath.Join(testEnv.Root, "busybox.tar")
	}
	oci, err := os.ReadFile(repoPath(archive))
	if err != nil {
		t.Fatalf("read test image: %v", err)
	}
	docker := dockerArchiveFromOCI(t, oci, "tendtest/dockerarchive:v1")
	if _, ok := tarNames(t, docker)["index.json"]; ok {
		t.Fatal("the docker archive has an index.json")
	}
	dst := freshEngine(t, "dockerarchive", nil)
	imgs, err := dst.e.LoadImages(testCtx(t), bytes.NewReader(docker), nil)
	want := "docker.io/tendtest/dockerarchive:v1"
	if err != nil || len(imgs) != 1 || imgs[0].Ref != want {
		t.Fatalf("LoadImages of a docker archive: %v, %v; want %s", imgs, err, want)
	}
	runEcho(t, dst, want)
}
