package backend

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func (env *fakeEnv) spec(id string) *specs.Spec {
	env.t.Helper()
	env.fc.mu.Lock()
	defer env.fc.mu.Unlock()
	c := env.fc.ctrs[id]
	if c == nil || c.spec == nil {
		env.t.Fatalf("no spec for %s", id)
	}
	return c.spec
}

func volumeNames(t *testing.T, e *Engine) []string {
	t.Helper()
	vs, err := e.Volumes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, v := range vs {
		out = append(out, v.Name)
	}
	return out
}

func specMount(s *specs.Spec, dst string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dst {
			return &s.Mounts[i]
		}
	}
	return nil
}

// TestVolumesLifecycle covers what a container does to volumes: created
// on first use with private directories, mounted as recorded, in use
// until the container is removed, anonymous ones removed with it on
// request, and the counts rebuilt by a new engine on the same root.
func TestVolumesLifecycle(t *testing.T) {
	env := newFakeEnv(t)
	ctx := context.Background()
	rootfs := t.TempDir()
	if err := os.MkdirAll(filepath.Join(rootfs, "seed"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "seed", "hello"), []byte("from the image\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	host := t.TempDir()
	c := env.create(CreateOptions{
		Rootfs: rootfs,
		Binds:  []string{"data:/data", host + ":/host:ro", "/anon", "seeded:/seed"},
		Mounts: []Mount{{Type: mount.TypeTmpfs, Target: "/scratch", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20}}},
	})
	vols := volumeNames(t, env.e)
	if len(vols) != 3 || !slices.Contains(vols, "data") || !slices.Contains(vols, "seeded") {
		t.Fatalf("volumes %v, want data, seeded and one anonymous", vols)
	}
	var anon string
	for _, v := range vols {
		if v != "data" && v != "seeded" {
			anon = v
		}
	}
	if len(anon) != 64 {
		t.Errorf("anonymous volume name %q: want 64 hex characters", anon)
	}
	volDir := filepath.Join(env.root, "volumes", "data")
	for p, want := range map[string]os.FileMode{filepath.Join(env.root, "volumes"): 0o700, volDir: 0o700, filepath.Join(volDir, "_data"): 0o755} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v mode %v, want %v", p, err, fi.Mode().Perm(), want)
		}
	}
	// Copy-up: the empty new volume got the image's content and mode.
	b, err := os.ReadFile(filepath.Join(env.root, "volumes", "seeded", "_data", "hello"))
	if err != nil || string(b) != "from the image\n" {
		t.Errorf("seeded volume: %q, %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(env.root, "volumes", "seeded", "_data")); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("seeded volume data dir: %v %v, want mode 0750 from the image", fi.Mode(), err)
	}

	rec := env.inspect(c.ID)
	byDst := map[string]MountPoint{}
	for _, m := range rec.Mounts {
		byDst[m.Destination] = m
	}
	if m := byDst["/data"]; m.Type != mount.TypeVolume || m.Name != "data" || m.Source != filepath.Join(volDir, "_data") || !m.RW || m.Driver != "local" {
		t.Errorf("/data mount %+v", m)
	}
	if m := byDst["/host"]; m.Type != mount.TypeBind || m.Source != host || m.RW || m.Mode != "ro" || m.Propagation != mount.PropagationRPrivate {
		t.Errorf("/host mount %+v", m)
	}
	if m := byDst["/anon"]; m.Type != mount.TypeVolume || m.Name != anon {
		t.Errorf("/anon mount %+v", m)
	}
	if m := byDst["/scratch"]; m.Type != mount.TypeTmpfs || !m.RW {
		t.Errorf("/scratch mount %+v", m)
	}
	spec := env.spec(c.ID)
	if m := specMount(spec, "/host"); m == nil || m.Type != "bind" || m.Source != host || !slices.Contains(m.Options, "ro") || !slices.Contains(m.Options, "rbind") {
		t.Errorf("OCI mount of /host: %+v", m)
	}
	if m := specMount(spec, "/data"); m == nil || m.Source != filepath.Join(volDir, "_data") || slices.Contains(m.Options, "ro") {
		t.Errorf("OCI mount of /data: %+v", m)
	}
	if m := specMount(spec, "/scratch"); m == nil || m.Type != "tmpfs" || !slices.Contains(m.Options, "size=1048576") || !slices.Contains(m.Options, "noexec") {
		t.Errorf("OCI mount of /scratch: %+v", m)
	}

	// In use: refused with the container's name, 409's class.
	err = env.e.RemoveVolume(ctx, "data", false)
	if !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), rec.Name) {
		t.Fatalf("RemoveVolume in use: %v", err)
	}
	if rep, err := env.e.PruneVolumes(ctx, true); err != nil || len(rep.VolumesDeleted) != 0 {
		t.Fatalf("prune with every volume in use: %+v %v", rep, err)
	}

	// A second engine on the same root counts the same uses.
	env.e.Close(ctx)
	env.open()
	if err := env.e.RemoveVolume(ctx, "data", false); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("RemoveVolume in use after an engine restart: %v", err)
	}

	// A second container shares the named volume.
	c2 := env.create(CreateOptions{Rootfs: rootfs, Binds: []string{"data:/other"}})
	if err := env.e.RemoveContainer(ctx, c.ID, RemoveOptions{Volumes: true}); err != nil {
		t.Fatal(err)
	}
	if vols := volumeNames(t, env.e); !slices.Equal(vols, []string{"data", "seeded"}) {
		t.Fatalf("after rm -v: volumes %v, want data and seeded (the anonymous one removed)", vols)
	}
	if err := env.e.RemoveVolume(ctx, "data", false); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("RemoveVolume used by the second container: %v", err)
	}
	if err := env.e.Remove(ctx, c2.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := env.e.RemoveVolume(ctx, "data", false); err != nil {
		t.Fatalf("RemoveVolume unused: %v", err)
	}
	if _, err := os.Stat(volDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("volume dir after remove: %v", err)
	}
	if err := env.e.RemoveVolume(ctx, "data", false); !errdefs.IsNotFound(err) {
		t.Errorf("RemoveVolume again: %v", err)
	}
	if err := env.e.RemoveVolume(ctx, "data", true); err != nil {
		t.Errorf("RemoveVolume --force of a missing volume: %v", err)
	}
}

func TestVolumePrune(t *testing.T) {
	env := newFakeEnv(t)
	ctx := context.Background()
	if _, err := env.e.CreateVolume(ctx, VolumeCreateRequest{Name: "named", Labels: map[string]string{"a": "b"}}); err != nil {
		t.Fatal(err)
	}
	c := env.create(CreateOptions{Binds: []string{"/anon"}})
	if err := env.e.Remove(ctx, c.ID, false); err != nil { // without -v: the anonymous volume stays
		t.Fatal(err)
	}
	if n := len(volumeNames(t, env.e)); n != 2 {
		t.Fatalf("%d volumes, want 2", n)
	}
	rep, err := env.e.PruneVolumes(ctx, false)
	if err != nil || len(rep.VolumesDeleted) != 1 || rep.VolumesDeleted[0] == "named" {
		t.Fatalf("prune: %+v %v, want the anonymous volume only", rep, err)
	}
	v, err := env.e.InspectVolume(ctx, "named")
	if err != nil || v.Labels["a"] != "b" || v.Driver != "local" || v.Mountpoint != filepath.Join(env.root, "volumes", "named", "_data") {
		t.Fatalf("inspect: %+v %v", v, err)
	}
	rep, err = env.e.PruneVolumes(ctx, true)
	if err != nil || !slices.Equal(rep.VolumesDeleted, []string{"named"}) {
		t.Fatalf("prune -a: %+v %v", rep, err)
	}
	if _, err := env.e.InspectVolume(ctx, "named"); !errdefs.IsNotFound(err) {
		t.Fatalf("inspect after prune: %v", err)
	}
	for _, bad := range []VolumeCreateRequest{{Name: "a/b"}, {Name: ".."}, {Name: "x", Driver: "nfs"}, {Name: "xy", DriverOpts: map[string]string{"o": "1"}}} {
		if _, err := env.e.CreateVolume(ctx, bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("CreateVolume(%+v) = %v, want invalid argument", bad, err)
		}
	}
	if v, err := env.e.CreateVolume(ctx, VolumeCreateRequest{}); err != nil || len(v.Name) != 64 {
		t.Errorf("CreateVolume without a name: %+v %v", v, err)
	}
}

// TestMountsBadInput checks that every refused mount is an invalid
// argument that leaves nothing behind: no container, no volume.
func TestMountsBadInput(t *testing.T) {
	env := newFakeEnv(t)
	ctx := context.Background()
	host := t.TempDir()
	for name, o := range map[string]CreateOptions{
		"malformed -v":            {Binds: []string{"data:/data", "/a:/b:/c:/d"}},
		"relative host path":      {Binds: []string{"data:/data", "./x:/x"}},
		"missing host path":       {Binds: []string{"data:/data", filepath.Join(host, "missing") + ":/x"}},
		"host root":               {Binds: []string{"data:/data", "/:/host"}},
		"engine root":             {Binds: []string{"data:/data", env.root + ":/host"}},
		"inside the engine root":  {Binds: []string{"data:/data", filepath.Join(env.root, "containers") + ":/host"}},
		"holding the engine root": {Binds: []string{"data:/data", filepath.Dir(env.root) + ":/host"}},
		"volume name with slash":  {Binds: []string{"data:/data"}, Mounts: []Mount{{Type: mount.TypeVolume, Source: "a/b", Target: "/x"}}},
		"volume name dotdot":      {Binds: []string{"data:/data", "..:/x"}},
		"unknown mount type":      {Binds: []string{"data:/data"}, Mounts: []Mount{{Type: "weird", Target: "/x"}}},
		"duplicate destination":   {Binds: []string{"data:/data", host + ":/data"}},
	} {
		t.Run(name, func(t *testing.T) {
			o.Rootfs, o.Cmd = env.root, []string{"/bin/true"}
			_, err := env.e.Create(ctx, o)
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("Create: %v, want invalid argument", err)
			}
			if vols := volumeNames(t, env.e); len(vols) != 0 {
				t.Errorf("volumes %v left by a refused create", vols)
			}
			cs, _ := env.e.List(ctx, ListOptions{All: true})
			if len(cs) != 0 {
				t.Errorf("%d containers left by a refused create", len(cs))
			}
		})
	}
	// Privileged may bind the engine's root.
	c := env.create(CreateOptions{Privileged: true, Binds: []string{env.root + ":/host:ro"}})
	if err := env.e.Remove(ctx, c.ID, false); err != nil {
		t.Fatal(err)
	}
}
