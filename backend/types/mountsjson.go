package types

import (
	"encoding/json"
	"os"
	"unicode"

	ctrtypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

// Mounts are a container's --mount values. In tend's own JSON (the record
// and inspect --raw) they take tend's snake_case names like every other
// field; records and clients that wrote docker's names (Type, ReadOnly,
// BindOptions, ...) are still read.
type Mounts []Mount

// MountPoints are a container's resolved mounts, in tend's JSON names as
// Mounts are; docker's names are still read.
type MountPoints []MountPoint

type bindOptionsJSON struct {
	Propagation            mount.Propagation `json:"propagation,omitempty"`
	NonRecursive           bool              `json:"non_recursive,omitempty"`
	CreateMountpoint       bool              `json:"create_mountpoint,omitempty"`
	ReadOnlyNonRecursive   bool              `json:"read_only_non_recursive,omitempty"`
	ReadOnlyForceRecursive bool              `json:"read_only_force_recursive,omitempty"`
}

type driverJSON struct {
	Name    string            `json:"name,omitempty"`
	Options map[string]string `json:"options,omitempty"`
}

type volumeOptionsJSON struct {
	NoCopy       bool              `json:"no_copy,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	Subpath      string            `json:"subpath,omitempty"`
	DriverConfig *driverJSON       `json:"driver_config,omitempty"`
}

type imageOptionsJSON struct {
	Subpath string `json:"subpath,omitempty"`
}

type tmpfsOptionsJSON struct {
	SizeBytes int64       `json:"size_bytes,omitempty"`
	Mode      os.FileMode `json:"mode,omitempty"`
	Options   [][]string  `json:"options,omitempty"`
}

type mountJSON struct {
	Type          mount.Type         `json:"type,omitempty"`
	Source        string             `json:"source,omitempty"`
	Target        string             `json:"target,omitempty"`
	ReadOnly      bool               `json:"read_only,omitempty"`
	Consistency   mount.Consistency  `json:"consistency,omitempty"`
	BindOptions   *bindOptionsJSON   `json:"bind_options,omitempty"`
	VolumeOptions *volumeOptionsJSON `json:"volume_options,omitempty"`
	ImageOptions  *imageOptionsJSON  `json:"image_options,omitempty"`
	TmpfsOptions  *tmpfsOptionsJSON  `json:"tmpfs_options,omitempty"`
}

type mountPointJSON struct {
	Type        mount.Type        `json:"type,omitempty"`
	Name        string            `json:"name,omitempty"`
	Source      string            `json:"source"`
	Destination string            `json:"destination"`
	Driver      string            `json:"driver,omitempty"`
	Mode        string            `json:"mode"`
	RW          bool              `json:"rw"`
	Propagation mount.Propagation `json:"propagation"`
}

func toMountJSON(m Mount) mountJSON {
	j := mountJSON{Type: m.Type, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly, Consistency: m.Consistency}
	if b := m.BindOptions; b != nil {
		j.BindOptions = &bindOptionsJSON{b.Propagation, b.NonRecursive, b.CreateMountpoint, b.ReadOnlyNonRecursive, b.ReadOnlyForceRecursive}
	}
	if v := m.VolumeOptions; v != nil {
		j.VolumeOptions = &volumeOptionsJSON{NoCopy: v.NoCopy, Labels: v.Labels, Subpath: v.Subpath}
		if d := v.DriverConfig; d != nil {
			j.VolumeOptions.DriverConfig = &driverJSON{d.Name, d.Options}
		}
	}
	if i := m.ImageOptions; i != nil {
		j.ImageOptions = &imageOptionsJSON{i.Subpath}
	}
	if t := m.TmpfsOptions; t != nil {
		j.TmpfsOptions = &tmpfsOptionsJSON{t.SizeBytes, t.Mode, t.Options}
	}
	return j
}

func (j mountJSON) mount() Mount {
	m := Mount{Type: j.Type, Source: j.Source, Target: j.Target, ReadOnly: j.ReadOnly, Consistency: j.Consistency}
	if b := j.BindOptions; b != nil {
		m.BindOptions = &mount.BindOptions{Propagation: b.Propagation, NonRecursive: b.NonRecursive, CreateMountpoint: b.CreateMountpoint,
			ReadOnlyNonRecursive: b.ReadOnlyNonRecursive, ReadOnlyForceRecursive: b.ReadOnlyForceRecursive}
	}
	if v := j.VolumeOptions; v != nil {
		m.VolumeOptions = &mount.VolumeOptions{NoCopy: v.NoCopy, Labels: v.Labels, Subpath: v.Subpath}
		if d := v.DriverConfig; d != nil {
			m.VolumeOptions.DriverConfig = &mount.Driver{Name: d.Name, Options: d.Options}
		}
	}
	if i := j.ImageOptions; i != nil {
		m.ImageOptions = &mount.ImageOptions{Subpath: i.Subpath}
	}
	if t := j.TmpfsOptions; t != nil {
		m.TmpfsOptions = &mount.TmpfsOptions{SizeBytes: t.SizeBytes, Mode: t.Mode, Options: t.Options}
	}
	return m
}

// MarshalJSON writes the mounts with tend's names.
func (ms Mounts) MarshalJSON() ([]byte, error) {
	if ms == nil {
		return []byte("null"), nil
	}
	out := make([]mountJSON, len(ms))
	for i, m := range ms {
		out[i] = toMountJSON(m)
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads tend's names or docker's, element by element.
func (ms *Mounts) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil || raw == nil {
		*ms = nil
		return err
	}
	out := make(Mounts, len(raw))
	for i, r := range raw {
		if dockerNames(r) {
			if err := json.Unmarshal(r, &out[i]); err != nil {
				return err
			}
			continue
		}
		var j mountJSON
		if err := json.Unmarshal(r, &j); err != nil {
			return err
		}
		out[i] = j.mount()
	}
	*ms = out
	return nil
}

// MarshalJSON writes the mount points with tend's names.
func (ps MountPoints) MarshalJSON() ([]byte, error) {
	if ps == nil {
		return []byte("null"), nil
	}
	out := make([]mountPointJSON, len(ps))
	for i, p := range ps {
		out[i] = mountPointJSON(p)
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads tend's names or docker's, element by element.
func (ps *MountPoints) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil || raw == nil {
		*ps = nil
		return err
	}
	out := make(MountPoints, len(raw))
	for i, r := range raw {
		if dockerNames(r) {
			if err := json.Unmarshal(r, &out[i]); err != nil {
				return err
			}
			continue
		}
		var j mountPointJSON
		if err := json.Unmarshal(r, &j); err != nil {
			return err
		}
		out[i] = ctrtypes.MountPoint(j)
	}
	*ps = out
	return nil
}

// dockerNames reports whether a JSON object uses docker's capitalised
// names (a record or client from before tend's names).
func dockerNames(r json.RawMessage) bool {
	var keys map[string]json.RawMessage
	if json.Unmarshal(r, &keys) != nil {
		return false
	}
	for k := range keys {
		if k != "" && unicode.IsUpper(rune(k[0])) {
			return true
		}
	}
	return false
}
