package backend

import (
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/mount"
)

func TestParseVolumeSpec(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want Mount
		mode string
		err  string // "" when valid
	}{
		{raw: "/host:/ctr", want: Mount{Type: mount.TypeBind, Source: "/host", Target: "/ctr"}},
		{raw: "/host:/ctr:ro", mode: "ro", want: Mount{Type: mount.TypeBind, Source: "/host", Target: "/ctr", ReadOnly: true}},
		{raw: "/host:/ctr:rw", mode: "rw", want: Mount{Type: mount.TypeBind, Source: "/host", Target: "/ctr"}},
		{raw: "/host:/ctr:ro,rshared", mode: "ro,rshared", want: Mount{Type: mount.TypeBind, Source: "/host", Target: "/ctr", ReadOnly: true,
			BindOptions: &mount.BindOptions{Propagation: mount.PropagationRShared}}},
		{raw: "/host:/ctr:z", mode: "z", want: Mount{Type: mount.TypeBind, Source: "/host", Target: "/ctr"}},
		{raw: "data:/data", want: Mount{Type: mount.TypeVolume, Source: "data", Target: "/data"}},
		{raw: "my_vol-1.x:/data:ro", mode: "ro", want: Mount{Type: mount.TypeVolume, Source: "my_vol-1.x", Target: "/data", ReadOnly: true}},
		{raw: "data:/data:nocopy", mode: "nocopy", want: Mount{Type: mount.TypeVolume, Source: "data", Target: "/data", VolumeOptions: &mount.VolumeOptions{NoCopy: true}}},
		{raw: "/anon", want: Mount{Type: mount.TypeVolume, Target: "/anon"}},

		{raw: "", err: "empty source"},
		{raw: ":/ctr", err: "empty source"},
		{raw: "/ctr:ro", err: "options without a source"},
		{raw: "/a:/b:/c:/d", err: "too many colons"},
		{raw: "/a:/b:rx", err: `invalid options "rx"`},
		{raw: "/a:/b:ro,rw", err: "each at most once"},
		{raw: "/a:/b:shared,slave", err: "each at most once"},
		{raw: "./data:/data", err: "invalid characters for a local volume name"},
		{raw: "data/sub:/data", err: "invalid characters"},
		{raw: "..:/data", err: "invalid characters"},
		{raw: "x:/data", err: "too short"},
		{raw: "data:/data:rshared", err: "bind mounts only"},
		{raw: "/host:/ctr:nocopy", err: "volumes only"},
		{raw: "/host:relative", err: "must be absolute"},
		{raw: "/host:/", err: "can't be '/'"},
		{raw: "data", err: "must be absolute"},
		{raw: "/host:", err: "empty destination"},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			m, mode, err := ParseVolumeSpec(tc.raw)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errdefs.IsInvalidArgument(err) {
					t.Fatalf("ParseVolumeSpec(%q) = %+v, %v; want an invalid-argument error containing %q", tc.raw, m, err, tc.err)
				}
				if !strings.Contains(err.Error(), "-v/--volume") {
					t.Errorf("error %q does not name the flag", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseVolumeSpec(%q): %v", tc.raw, err)
			}
			if mode != tc.mode || !sameMount(m, tc.want) {
				t.Errorf("ParseVolumeSpec(%q) = %+v mode %q; want %+v mode %q", tc.raw, m, mode, tc.want, tc.mode)
			}
		})
	}
}

func sameMount(a, b Mount) bool {
	if a.Type != b.Type || a.Source != b.Source || a.Target != b.Target || a.ReadOnly != b.ReadOnly {
		return false
	}
	if (a.BindOptions == nil) != (b.BindOptions == nil) || (a.BindOptions != nil && *a.BindOptions != *b.BindOptions) {
		return false
	}
	if (a.VolumeOptions == nil) != (b.VolumeOptions == nil) || (a.VolumeOptions != nil && a.VolumeOptions.NoCopy != b.VolumeOptions.NoCopy) {
		return false
	}
	return true
}

func TestValidateMount(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    Mount
		err  string
	}{
		{"bind", Mount{Type: mount.TypeBind, Source: "/h", Target: "/c", ReadOnly: true}, ""},
		{"volume", Mount{Type: mount.TypeVolume, Source: "data", Target: "/c"}, ""},
		{"anonymous volume", Mount{Type: mount.TypeVolume, Target: "/c"}, ""},
		{"tmpfs", Mount{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20, Mode: 0o1777}}, ""},
		{"volume local driver", Mount{Type: mount.TypeVolume, Source: "data", Target: "/c", VolumeOptions: &mount.VolumeOptions{DriverConfig: &mount.Driver{Name: "local"}}}, ""},

		{"no type", Mount{Source: "/h", Target: "/c"}, "type is required"},
		{"unknown type", Mount{Type: "weird", Target: "/c"}, "mount type unknown"},
		{"image type", Mount{Type: mount.TypeImage, Source: "busybox", Target: "/c"}, "mount type unknown"},
		{"no target", Mount{Type: mount.TypeVolume, Source: "data"}, "Target (dst) must not be empty"},
		{"relative target", Mount{Type: mount.TypeVolume, Target: "c"}, "must be absolute"},
		{"root target", Mount{Type: mount.TypeVolume, Target: "/"}, "can't be '/'"},
		{"bind without source", Mount{Type: mount.TypeBind, Target: "/c"}, "Source (src) must not be empty"},
		{"relative bind", Mount{Type: mount.TypeBind, Source: "data", Target: "/c"}, "must be an absolute path"},
		{"bad propagation", Mount{Type: mount.TypeBind, Source: "/h", Target: "/c", BindOptions: &mount.BindOptions{Propagation: "sideways"}}, "invalid propagation"},
		{"bind-create-src", Mount{Type: mount.TypeBind, Source: "/h", Target: "/c", BindOptions: &mount.BindOptions{CreateMountpoint: true}}, "not supported"},
		{"volume with slash", Mount{Type: mount.TypeVolume, Source: "a/b", Target: "/c"}, "invalid characters"},
		{"volume dotdot", Mount{Type: mount.TypeVolume, Source: "..", Target: "/c"}, "invalid characters"},
		{"bind options on volume", Mount{Type: mount.TypeVolume, Source: "data", Target: "/c", BindOptions: &mount.BindOptions{}}, "BindOptions"},
		{"volume options on bind", Mount{Type: mount.TypeBind, Source: "/h", Target: "/c", VolumeOptions: &mount.VolumeOptions{}}, "VolumeOptions"},
		{"tmpfs source", Mount{Type: mount.TypeTmpfs, Source: "x", Target: "/t"}, "must not be specified"},
		{"tmpfs bad mode", Mount{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{Mode: 0o10000}}, "tmpfs-mode"},
		{"tmpfs option", Mount{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{Options: [][]string{{"uid", "0"}}}}, "not supported"},
		{"other driver", Mount{Type: mount.TypeVolume, Source: "d1", Target: "/c", VolumeOptions: &mount.VolumeOptions{DriverConfig: &mount.Driver{Name: "nfs"}}}, "not supported"},
		{"subpath", Mount{Type: mount.TypeVolume, Source: "d1", Target: "/c", VolumeOptions: &mount.VolumeOptions{Subpath: "x"}}, "not supported"},
		{"consistency", Mount{Type: mount.TypeVolume, Target: "/c", Consistency: "eventual"}, "consistency"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.m
			err := ValidateMount(&m)
			if tc.err == "" {
				if err != nil {
					t.Fatalf("ValidateMount(%+v): %v", tc.m, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errdefs.IsInvalidArgument(err) {
				t.Fatalf("ValidateMount(%+v) = %v; want an invalid-argument error containing %q", tc.m, err, tc.err)
			}
			if !strings.Contains(err.Error(), "--mount") {
				t.Errorf("error %q does not name the flag", err)
			}
		})
	}
}

func TestValidateVolumeName(t *testing.T) {
	for name, ok := range map[string]bool{
		"data": true, "a1": true, "My_Vol.2-x": true, strings.Repeat("a", 64): true,
		"": false, "a": false, ".": false, "..": false, "../x": false, "a/b": false, "/abs": false,
		".hidden": false, "-x": false, "a b": false, "a:b": false, strings.Repeat("a", 256): false,
	} {
		err := ValidateVolumeName(name)
		if ok != (err == nil) || (err != nil && !errdefs.IsInvalidArgument(err)) {
			t.Errorf("ValidateVolumeName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func TestWithin(t *testing.T) {
	for _, tc := range []struct {
		p, dir string
		want   bool
	}{
		{"/var/lib/tend", "/var/lib/tend", true},
		{"/var/lib/tend/engine", "/var/lib/tend", true},
		{"/var/lib/tender", "/var/lib/tend", false},
		{"/var/lib", "/var/lib/tend", false},
		{"/", "/var", false},
		{"/var/lib/tend", "/", true},
	} {
		if got := within(tc.p, tc.dir); got != tc.want {
			t.Errorf("within(%q, %q) = %v, want %v", tc.p, tc.dir, got, tc.want)
		}
	}
}
