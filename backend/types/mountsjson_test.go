package types

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/mount"
)

// TestMountsJSON: tend's names out, tend's or docker's names in.
func TestMountsJSON(t *testing.T) {
	in := Mounts{
		{Type: mount.TypeBind, Source: "/srv", Target: "/data", ReadOnly: true, BindOptions: &mount.BindOptions{Propagation: mount.PropagationRSlave, CreateMountpoint: true}},
		{Type: mount.TypeVolume, Source: "v", Target: "/v", VolumeOptions: &mount.VolumeOptions{NoCopy: true, Labels: map[string]string{"a": "b"}, DriverConfig: &mount.Driver{Name: "local"}}},
		{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20, Mode: 0o700}},
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{`"read_only":true`, `"bind_options":{"propagation":"rslave","create_mountpoint":true}`, `"no_copy":true`, `"driver_config":{"name":"local"}`, `"size_bytes":1048576`} {
		if !strings.Contains(string(b), name) {
			t.Errorf("%s lacks %s", b, name)
		}
	}
	var back Mounts
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, in) {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	// A record written with docker's names.
	old, _ := json.Marshal([]mount.Mount(in))
	var fromOld Mounts
	if err := json.Unmarshal(old, &fromOld); err != nil || !reflect.DeepEqual(fromOld, in) {
		t.Errorf("docker's names: %+v, %v", fromOld, err)
	}

	ps := MountPoints{{Type: mount.TypeVolume, Name: "v", Source: "/var/lib/tend/volumes/v/_data", Destination: "/v", Driver: "local", Mode: "z", RW: true}}
	b, _ = json.Marshal(ps)
	if want := `[{"type":"volume","name":"v","source":"/var/lib/tend/volumes/v/_data","destination":"/v","driver":"local","mode":"z","rw":true,"propagation":""}]`; string(b) != want {
		t.Errorf("mount points: %s, want %s", b, want)
	}
	var psBack MountPoints
	if err := json.Unmarshal(b, &psBack); err != nil || !reflect.DeepEqual(psBack, ps) {
		t.Errorf("mount points round trip: %+v, %v", psBack, err)
	}
	old, _ = json.Marshal([]MountPoint(ps))
	psBack = nil
	if err := json.Unmarshal(old, &psBack); err != nil || !reflect.DeepEqual(psBack, ps) {
		t.Errorf("mount points, docker's names: %+v, %v", psBack, err)
	}
}
