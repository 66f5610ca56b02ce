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
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/tendhq/tend/internal/testimage"
)

// engineMount is a mount of a container record, docker's MountPoint.
type engineMount struct {
	Type        string
	Name        string
	Source      string
	Destination string
	RW          bool
}

func (d *engineDaemon) mounts(t *testing.T, ref string) []engineMount {
	t.Helper()
	var recs []struct {
		Mounts []engineMount `json:"mounts"`
	}
	out := d.must(t, "inspect", ref)
	if err := json.Unmarshal([]byte(out), &recs); err != nil || len(recs) != 1 {
		t.Fatalf("inspect %s: %v in %q", ref, err, out)
	}
	return recs[0].Mounts
}

func (d *engineDaemon) volumeNames(t *testing.T) []string {
	t.Helper()
	return strings.Fields(d.must(t, "volume", "ls", "-q"))
}

// api sends one request to the daemon's API and returns the status and
// the error message, if any.
func (d *engineDaemon) api(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.sock)
	}}}
	defer hc.CloseIdleConnections()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://engine"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var er struct {
		Message string `json:"message"`
	}
	_ = json.Unmarshal(b, &er)
	return resp.StatusCode, er.Message
}

// TestEngineVolumes drives bind mounts and volumes through the CLI and the
// API of a real daemon: read-only and read-write binds, a named volume's
// data across container removals and a daemon restart, a volume in use,
// anonymous volumes removed with rm -v and --rm, and bad input refused
// with nothing created.
func TestEngineVolumes(t *testing.T) {
	root, err := os.MkdirTemp(testEnv.Root, "engvol-")
	if err != nil {
		t.Fatal(err)
	}
	ns := testEnv.Namespace + "-volumes"
	d := startEngine(t, root, ns)
	t.Cleanup(func() { cleanupEngine(t, d) })
	img := testEnv.ImageRef
	d.must(t, "image", "import", engineImage(t))

	t.Run("BindReadOnly", func(t *testing.T) {
		host := t.TempDir()
		if err := os.WriteFile(filepath.Join(host, "f"), []byte("from the host\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, flag := range [][]string{{"-v", host + ":/h:ro"}, {"--mount", "type=bind,src=" + host + ",dst=/h,readonly"}} {
			args := append(append([]string{"run", "--rm"}, flag...), img, "sh", "-c", "cat /h/f; touch /h/new")
			out, errs, code := d.run(t, nil, args...)
			if code == 0 || out != "from the host\n" || !strings.Contains(errs, "Read-only file system") {
				t.Errorf("%v: exit %d stdout %q stderr %q; want the file read and the write refused", flag, code, out, errs)
			}
			if _, err := os.Stat(filepath.Join(host, "new")); !os.IsNotExist(err) {
				t.Errorf("%v: a read-only bind let the container create a file (%v)", flag, err)
			}
		}
	})

	t.Run("BindReadWrite", func(t *testing.T) {
		host := t.TempDir()
		d.must(t, "run", "--rm", "-v", host+":/h", img, "sh", "-c", "echo from the container > /h/out")
		if b, err := os.ReadFile(filepath.Join(host, "out")); err != nil || string(b) != "from the container\n" {
			t.Errorf("host sees %q, %v", b, err)
		}
		d.must(t, "run", "--rm", "--mount", "type=bind,source="+host+",target=/h", img, "sh", "-c", "echo again >> /h/out")
		if b, _ := os.ReadFile(filepath.Join(host, "out")); string(b) != "from the container\nagain\n" {
			t.Errorf("host sees %q after --mount", b)
		}
	})

	t.Run("NamedVolume", func(t *testing.T) {
		d.must(t, "run", "--name", "writer", "-v", "appdata:/data", img, "sh", "-c", "echo persisted > /data/f")
		if out := d.must(t, "volume", "ls"); !regexp.MustCompile(`(?m)^DRIVER\s+VOLUME NAME\n(.*\n)*local\s+appdata$`).MatchString(out) {
			t.Errorf("volume ls:\n%s", out)
		}
		ms := d.mounts(t, "writer")
		if len(ms) != 1 || ms[0].Type != "volume" || ms[0].Name != "appdata" || ms[0].Destination != "/data" || !ms[0].RW ||
			!strings.HasSuffix(ms[0].Source, "/volumes/appdata/_data") {
			t.Errorf("inspect mounts %+v", ms)
		}
		// In use by a stopped container: refused, by the CLI and the API.
		d.expectFail(t, 1, "in use by container writer", "volume", "rm", "appdata")
		if st, msg := d.api(t, "DELETE", "/v1/volumes/appdata", ""); st != http.StatusConflict || !strings.Contains(msg, "in use") {
			t.Errorf("DELETE in-use volume: %d %q, want 409", st, msg)
		}
		d.must(t, "rm", "writer")
		if out := d.must(t, "run", "--rm", "-v", "appdata:/data:ro", img, "cat", "/data/f"); out != "persisted\n" {
			t.Errorf("a second container reads %q", out)
		}
		var vols []struct{ Name, Driver, Mountpoint string }
		if err := json.Unmarshal([]byte(d.must(t, "volume", "inspect", "appdata")), &vols); err != nil || len(vols) != 1 ||
			vols[0].Name != "appdata" || vols[0].Driver != "local" || !strings.HasSuffix(vols[0].Mountpoint, "/appdata/_data") {
			t.Errorf("volume inspect: %+v %v", vols, err)
		}
	})

	t.Run("VolumeSurvivesDaemonRestart", func(t *testing.T) {
		d.must(t, "run", "-d", "--name", "keeper", "--mount", "type=volume,src=appdata,dst=/data", img, "sleep", "300")
		if err := d.signal(t, syscall.SIGTERM); err != nil {
			t.Fatalf("daemon exit after SIGTERM: %v\n%s", err, d.logs.String())
		}
		d = startEngine(t, root, ns)
		d.expectFail(t, 1, "in use by container keeper", "volume", "rm", "appdata")
		if out := d.must(t, "exec", "keeper", "cat", "/data/f"); out != "persisted\n" {
			t.Errorf("after the restart the container reads %q", out)
		}
		d.must(t, "rm", "-f", "keeper")
		if out := d.must(t, "run", "--rm", "-v", "appdata:/data", img, "cat", "/data/f"); out != "persisted\n" {
			t.Errorf("after the restart a new container reads %q", out)
		}
		if out := d.must(t, "volume", "rm", "appdata"); out != "appdata\n" {
			t.Errorf("volume rm printed %q", out)
		}
		if slices.Contains(d.volumeNames(t), "appdata") {
			t.Errorf("appdata still listed after volume rm")
		}
		if _, err := os.Stat(filepath.Join(root, "engine", "volumes", "appdata")); !os.IsNotExist(err) {
			t.Errorf("appdata's directory after volume rm: %v", err)
		}
	})

	t.Run("CopyUp", func(t *testing.T) {
		// A new volume takes the image's content and the mode of its directory.
		out := d.must(t, "run", "--rm", "-v", "rootvol:/root", "-v", "etcvol:/etc", img, "sh", "-c", "stat -c %a /root; grep -c ^root: /etc/passwd")
		if out != "700\n1\n" {
			t.Errorf("copy-up: %q, want the image's /root mode 700 and its /etc/passwd", out)
		}
		// A volume with data keeps it; nocopy leaves a new one empty.
		d.must(t, "run", "--rm", "-v", "etcvol:/etc", img, "sh", "-c", "echo mine > /etc/passwd")
		if out := d.must(t, "run", "--rm", "-v", "etcvol:/etc", img, "cat", "/etc/passwd"); out != "mine\n" {
			t.Errorf("a volume with data was filled again: %q", out)
		}
		if out := d.must(t, "run", "--rm", "-v", "emptyvol:/etc:nocopy", img, "ls", "-A", "/etc"); out != "" {
			t.Errorf("nocopy volume holds %q", out)
		}
		d.must(t, "volume", "rm", "rootvol", "etcvol", "emptyvol")
	})

	t.Run("AnonymousVolumes", func(t *testing.T) {
		hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
		before := d.volumeNames(t)
		d.must(t, "create", "--name", "anon", "-v", "/scratch", img, "true")
		ms := d.mounts(t, "anon")
		if len(ms) != 1 || ms[0].Type != "volume" || !hex64.MatchString(ms[0].Name) || ms[0].Destination != "/scratch" {
			t.Fatalf("mounts %+v, want one anonymous volume at /scratch", ms)
		}
		if !slices.Contains(d.volumeNames(t), ms[0].Name) {
			t.Fatalf("anonymous volume %s not listed", ms[0].Name)
		}
		d.must(t, "rm", "-v", "anon")
		if slices.Contains(d.volumeNames(t), ms[0].Name) {
			t.Errorf("rm -v left the anonymous volume %s", ms[0].Name)
		}
		// --rm removes them too, as docker does.
		d.must(t, "run", "--rm", "-v", "/scratch", img, "true")
		enginePoll(t, 30*time.Second, "--rm to remove the anonymous volume", func() bool {
			return slices.Equal(d.volumeNames(t), before)
		})
		// Without -v it stays, until a prune.
		d.must(t, "create", "--name", "anon2", "-v", "/scratch", "-v", "keptvol:/kept", img, "true")
		anon := d.mounts(t, "anon2")
		d.must(t, "rm", "anon2")
		if n := len(d.volumeNames(t)); n != len(before)+2 {
			t.Fatalf("%d volumes after rm without -v, want %d", n, len(before)+2)
		}
		out := d.must(t, "volume", "prune", "-f")
		if !strings.Contains(out, "Deleted Volumes:") || strings.Contains(out, "keptvol") || !strings.Contains(out, "Total reclaimed space:") {
			t.Errorf("volume prune -f printed %q", out)
		}
		for _, m := range anon {
			if hex64.MatchString(m.Name) && slices.Contains(d.volumeNames(t), m.Name) {
				t.Errorf("prune left the anonymous volume %s", m.Name)
			}
		}
		if !slices.Contains(d.volumeNames(t), "keptvol") {
			t.Errorf("prune without --all removed the named volume keptvol")
		}
		d.must(t, "volume", "prune", "-f", "--all")
		if slices.Contains(d.volumeNames(t), "keptvol") {
			t.Errorf("prune --all left keptvol")
		}
	})

	t.Run("BadInput", func(t *testing.T) {
		host := t.TempDir()
		vols, ctrs := d.volumeNames(t), d.must(t, "ps", "-aq")
		for _, tc := range []struct {
			msg  string
			args []string
		}{
			{"too many colons", []string{"-v", "/a:/b:/c:/d"}},
			{"invalid options", []string{"-v", "/a:/b:rx"}},
			{"invalid characters for a local volume name", []string{"-v", "relative/path:/x"}},
			{"invalid characters for a local volume name", []string{"-v", "..:/x"}},
			{"bind source path does not exist", []string{"-v", filepath.Join(host, "missing") + ":/x"}},
			{"host's root directory", []string{"-v", "goodvol:/good", "-v", "/:/host"}},
			{"engine's state", []string{"-v", "goodvol:/good", "-v", root + ":/host"}},
			{"engine's state", []string{"-v", "goodvol:/good", "-v", filepath.Join(root, "engine", "volumes") + ":/host"}},
			{"invalid characters", []string{"--mount", "type=volume,src=a/b,dst=/x"}},
			{"mount type unknown", []string{"--mount", "type=nfs,src=x,dst=/x"}},
			{"unknown option 'color'", []string{"--mount", "type=bind,src=" + host + ",dst=/x,color=red"}},
			{"must be an absolute path", []string{"--mount", "type=bind,src=rel,dst=/x"}},
			{"duplicate mount point", []string{"-v", "goodvol:/x", "-v", host + ":/x"}},
		} {
			args := append(append([]string{"run", "--rm"}, tc.args...), img, "true")
			d.expectFail(t, 125, tc.msg, args...)
		}
		d.expectFail(t, 1, "invalid characters", "volume", "create", "../escape")
		for _, tc := range []struct {
			method, path, body string
			msg                string
		}{
			{"POST", "/v1/volumes", `{"Name":"../escape"}`, "invalid characters"},
			{"POST", "/v1/volumes", `{"Name":"a/b"}`, "invalid characters"},
			{"POST", "/v1/volumes", `{"Name":"okname","Driver":"nfs"}`, "not supported"},
			{"POST", "/v1/containers", `{"image":"` + img + `","binds":["/:/host"]}`, "host's root"},
			{"POST", "/v1/containers", `{"image":"` + img + `","binds":["a:b:c:d:e"]}`, "invalid volume specification"},
			{"POST", "/v1/containers", `{"image":"` + img + `","mounts":[{"Type":"image","Source":"x","Target":"/x"}]}`, "mount type unknown"},
			{"GET", "/v1/volumes/..", "", ""}, // refused before any route
		} {
			if st, msg := d.api(t, tc.method, tc.path, tc.body); st != http.StatusBadRequest || !strings.Contains(msg, tc.msg) {
				t.Errorf("%s %s %s: %d %q, want 400 with %q", tc.method, tc.path, tc.body, st, msg, tc.msg)
			}
		}
		if st, _ := d.api(t, "GET", "/v1/volumes/nosuchvol", ""); st != http.StatusNotFound {
			t.Errorf("GET unknown volume: %d, want 404", st)
		}
		if after := d.volumeNames(t); !slices.Equal(after, vols) {
			t.Errorf("volumes %v after refused input, before %v", after, vols)
		}
		if after := d.must(t, "ps", "-aq"); after != ctrs {
			t.Errorf("containers %q after refused input, before %q", after, ctrs)
		}
		if _, err := os.Stat(filepath.Join(root, "engine", "volumes", "escape")); !os.IsNotExist(err) {
			t.Errorf("a refused name made a directory: %v", err)
		}
	})

	t.Run("Commands", func(t *testing.T) {
		if out := d.must(t, "volume", "create", "--label", "team=web", "made"); out != "made\n" {
			t.Errorf("volume create made printed %q", out)
		}
		if out := d.must(t, "volume", "create", "made"); out != "made\n" {
			t.Errorf("volume create of an existing volume printed %q, want it returned as is", out)
		}
		anon := strings.TrimSpace(d.must(t, "volume", "create"))
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(anon) {
			t.Errorf("volume create without a name printed %q, want a 64-hex name", anon)
		}
		var vols []struct {
			Name   string
			Labels map[string]string
		}
		if err := json.Unmarshal([]byte(d.must(t, "volume", "inspect", "made")), &vols); err != nil || len(vols) != 1 || vols[0].Labels["team"] != "web" {
			t.Errorf("volume inspect made: %+v %v, want its label", vols, err)
		}
		if st, msg := d.api(t, "POST", "/v1/volumes", `{"Name":"viaapi"}`); st != http.StatusCreated {
			t.Errorf("POST /v1/volumes: %d %q, want 201", st, msg)
		}
		if st, _ := d.api(t, "GET", "/v1/volumes/viaapi", ""); st != http.StatusOK {
			t.Errorf("GET /v1/volumes/viaapi: %d, want 200", st)
		}
		if names := d.volumeNames(t); !slices.Contains(names, "made") || !slices.Contains(names, anon) || !slices.Contains(names, "viaapi") {
			t.Errorf("volume ls -q: %v", names)
		}
		if st, msg := d.api(t, "DELETE", "/v1/volumes/viaapi", ""); st != http.StatusNoContent {
			t.Errorf("DELETE /v1/volumes/viaapi: %d %q, want 204", st, msg)
		}
		if out := d.must(t, "volume", "rm", "made", anon); out != "made\n"+anon+"\n" {
			t.Errorf("volume rm printed %q", out)
		}
		if names := d.volumeNames(t); slices.Contains(names, "made") || slices.Contains(names, anon) || slices.Contains(names, "viaapi") {
			t.Errorf("volumes left after rm: %v", names)
		}
	})
}

// makeVolumeImage stores in the daemon's namespace a copy of the test
// image whose config declares VOLUME /etc, as a Dockerfile's VOLUME would,
// and returns its reference. A lease keeps its blobs until the test ends.
func makeVolumeImage(t *testing.T, d *engineDaemon) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), d.ns), time.Minute)
	defer cancel()
	c, err := client.New(testEnv.Address, client.WithDefaultNamespace(d.ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	lctx, done, err := c.WithLease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), d.ns), time.Minute)
		defer cancel()
		_ = done(dctx)
	})
	img, err := c.GetImage(lctx, testEnv.ImageRef)
	if err != nil {
		t.Fatal(err)
	}
	cs := c.ContentStore()
	mf, err := images.Manifest(lctx, cs, img.Target(), platforms.Default())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := content.ReadBlob(lctx, cs, mf.Config)
	if err != nil {
		t.Fatal(err)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Config.Volumes = map[string]struct{}{"/etc": {}}
	write := func(mediaType string, v any) ocispec.Descriptor {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
		if err := content.WriteBlob(lctx, cs, desc.Digest.String(), bytes.NewReader(b), desc); err != nil {
			t.Fatal(err)
		}
		return desc
	}
	mf.Config = write(ocispec.MediaTypeImageConfig, cfg)
	target := write(ocispec.MediaTypeImageManifest, mf)
	ref := "docker.io/library/volimg:latest"
	if _, err := c.ImageService().Create(lctx, images.Image{Name: ref, Target: target}); err != nil {
		t.Fatal(err)
	}
	if err := client.NewImage(c, images.Image{Name: ref, Target: target}).Unpack(lctx, "overlayfs"); err != nil {
		t.Fatal(err)
	}
	return ref
}

// TestEngineImageVolume checks that an image's VOLUME gets an anonymous
// volume filled from the image, removed with rm -v and with --rm, and
// that a -v at the same place replaces it.
func TestEngineImageVolume(t *testing.T) {
	root, err := os.MkdirTemp(testEnv.Root, "engimgvol-")
	if err != nil {
		t.Fatal(err)
	}
	d := startEngine(t, root, testEnv.Namespace+"-imgvol")
	t.Cleanup(func() { cleanupEngine(t, d) })
	d.must(t, "image", "import", engineImage(t))
	img := makeVolumeImage(t, d)
	t.Cleanup(func() { d.run(t, nil, "image", "rm", img) })

	d.must(t, "create", "--name", "vi", img, "true")
	ms := d.mounts(t, "vi")
	if len(ms) != 1 || ms[0].Type != "volume" || ms[0].Destination != "/etc" || len(ms[0].Name) != 64 {
		t.Fatalf("mounts %+v, want an anonymous volume at /etc", ms)
	}
	if b, err := os.ReadFile(filepath.Join(ms[0].Source, "passwd")); err != nil || !strings.HasPrefix(string(b), "root:") {
		t.Errorf("the image's /etc was not copied into its volume: %q %v", b, err)
	}
	d.must(t, "rm", "-v", "vi")
	if vols := d.volumeNames(t); len(vols) != 0 {
		t.Errorf("volumes %v after rm -v", vols)
	}
	if out := d.must(t, "run", "--rm", img, "grep", "-c", "^root:", "/etc/passwd"); out != "1\n" {
		t.Errorf("a container of the image reads %q from its /etc volume", out)
	}
	// run --rm returns once the container and its anonymous volume are
	// gone, as docker run --rm does.
	if vols := d.volumeNames(t); len(vols) != 0 {
		t.Errorf("volumes %v right after run --rm returned", vols)
	}
	d.must(t, "create", "--name", "vi2", "-v", "myetc:/etc", img, "true")
	if ms := d.mounts(t, "vi2"); len(ms) != 1 || ms[0].Name != "myetc" {
		t.Errorf("mounts %+v, want the named volume in place of the image's", ms)
	}
	d.must(t, "rm", "vi2")
	d.must(t, "volume", "rm", "myetc")

	// The application image runs as uid 1000 with VOLUME /data owned by
	// it: its anonymous volume and a new named one take that owner, so
	// the non-root user can write, and the data outlives the container.
	app := filepath.Join(t.TempDir(), "app.tar")
	if err := testimage.WriteAppArchiveFile(app, busyboxPath(), testimage.AppRef); err != nil {
		t.Fatal(err)
	}
	d.must(t, "image", "import", app)
	out := d.must(t, "run", "--rm", testimage.AppRef, "sh", "-c", "id -u; touch /data/anon && echo wrote")
	if !strings.HasSuffix(out, "1000\nwrote\n") {
		t.Errorf("app image with its anonymous /data volume: %q, want uid 1000 and a write", out)
	}
	d.must(t, "run", "--rm", "-v", "appvol:/data", testimage.AppRef, "sh", "-c", "echo kept > /data/f")
	if out := d.must(t, "run", "--rm", "-v", "appvol:/data", testimage.AppRef, "cat", "/data/f"); !strings.HasSuffix(out, "kept\n") {
		t.Errorf("a named volume of the app image reads %q", out)
	}
	d.must(t, "volume", "rm", "appvol")
	d.run(t, nil, "image", "rm", testimage.AppRef)
}
