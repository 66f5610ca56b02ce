package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/mount"

	"github.com/tendhq/tend/cmd/internal/api"
)

func TestParseMount(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in   string
		want api.Mount
		err  string
	}{
		{in: "type=bind,src=/h,dst=/c,readonly", want: api.Mount{Type: mount.TypeBind, Source: "/h", Target: "/c", ReadOnly: true}},
		{in: "type=bind,source=/h,target=/c,ro=false", want: api.Mount{Type: mount.TypeBind, Source: "/h", Target: "/c"}},
		{in: "src=data,dst=/data", want: api.Mount{Type: mount.TypeVolume, Source: "data", Target: "/data"}},
		{in: "type=volume,destination=/data", want: api.Mount{Type: mount.TypeVolume, Target: "/data"}},
		{in: "type=volume,src=data,dst=/data,volume-nocopy", want: api.Mount{Type: mount.TypeVolume, Source: "data", Target: "/data",
			VolumeOptions: &mount.VolumeOptions{NoCopy: true}}},
		{in: "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770", want: api.Mount{Type: mount.TypeTmpfs, Target: "/t",
			TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20, Mode: 0o1770}}},
		{in: `type=bind,"src=/a,b",dst=/c`, want: api.Mount{Type: mount.TypeBind, Source: "/a,b", Target: "/c"}},
		{in: "type=bind,src=./rel,dst=/c", want: api.Mount{Type: mount.TypeBind, Source: filepath.Join(wd, "rel"), Target: "/c"}},
		{in: "type=bind,src=/h,dst=/c,bind-propagation=rshared", want: api.Mount{Type: mount.TypeBind, Source: "/h", Target: "/c",
			BindOptions: &mount.BindOptions{Propagation: mount.PropagationRShared}}},

		{in: "", err: "value is empty"},
		{in: "type=nfs,src=x,dst=/c", err: "mount type unknown"},
		{in: "type=bind,src=/h,dst=/c,color=red", err: "unknown option 'color'"},
		{in: "type=bind,src=/h,dst=/c,readonly=maybe", err: "invalid boolean value"},
		{in: "type=bind,src=/h", err: "Target (dst) must not be empty"},
		{in: "type=bind,src=rel,dst=/c", err: "must be an absolute path"},
		{in: "type=volume,src=a/b,dst=/c", err: "invalid characters"},
		{in: "type=volume,src=..,dst=/c", err: "invalid characters"},
		{in: "type=tmpfs,src=x,dst=/c", err: "must not be specified"},
		{in: "type=volume,src=d1,dst=/c,bind-propagation=shared", err: "BindOptions"},
		{in: "type=tmpfs,dst=/c,tmpfs-size=lots", err: "invalid value for tmpfs-size"},
		{in: "type=bind,src=/h,dst", err: "must be a key=value pair"},
		{in: "type=bind, src=/h,dst=/c", err: "should not have whitespace"},
		{in: `type=bind,"src=/h`, err: "extraneous or missing"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			m, err := ParseMount(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errdefs.IsInvalidArgument(err) {
					t.Fatalf("ParseMount(%q) = %+v, %v; want an invalid-argument error containing %q", tc.in, m, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMount(%q): %v", tc.in, err)
			}
			if m.Type != tc.want.Type || m.Source != tc.want.Source || m.Target != tc.want.Target || m.ReadOnly != tc.want.ReadOnly ||
				(m.BindOptions == nil) != (tc.want.BindOptions == nil) || (m.BindOptions != nil && *m.BindOptions != *tc.want.BindOptions) ||
				(m.VolumeOptions == nil) != (tc.want.VolumeOptions == nil) || (m.VolumeOptions != nil && m.VolumeOptions.NoCopy != tc.want.VolumeOptions.NoCopy) ||
				(m.TmpfsOptions == nil) != (tc.want.TmpfsOptions == nil) || (m.TmpfsOptions != nil && (m.TmpfsOptions.SizeBytes != tc.want.TmpfsOptions.SizeBytes || m.TmpfsOptions.Mode != tc.want.TmpfsOptions.Mode)) {
				t.Errorf("ParseMount(%q) = %+v, want %+v", tc.in, m, tc.want)
			}
		})
	}
}

func TestVolumeFlagsApply(t *testing.T) {
	f := VolumeFlags{Volumes: []string{"data:/data", "/h:/c:ro"}, Mounts: []string{"type=tmpfs,dst=/t"}}
	var o api.CreateOptions
	if err := f.Apply(&o); err != nil {
		t.Fatal(err)
	}
	if len(o.Binds) != 2 || len(o.Mounts) != 1 || o.Mounts[0].Type != mount.TypeTmpfs {
		t.Errorf("options %+v", o)
	}
	for _, bad := range []VolumeFlags{{Volumes: []string{"/a:/b:/c:/d"}}, {Mounts: []string{"type=weird,dst=/x"}}} {
		err := bad.Apply(&api.CreateOptions{})
		var se *StatusError
		if err == nil || !errorsAs(err, &se) || se.Code != ExitEngineError {
			t.Errorf("Apply(%+v) = %v, want exit %d", bad, err, ExitEngineError)
		}
		if bad.Mounts != nil && !strings.Contains(err.Error(), `"--mount" flag`) {
			t.Errorf("error %q does not name the flag", err)
		}
	}
}

func errorsAs(err error, target **StatusError) bool {
	se, ok := err.(*StatusError)
	if ok {
		*target = se
	}
	return ok
}
