package types

import (
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	ctrtypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/volume"
)

// MountPoint is a mount of a container as inspect shows it, in docker's
// shape: Type, Name (of a volume), Source (host path; a volume's data
// directory), Destination, Driver, Mode (the -v options as given), RW and
// Propagation.
type MountPoint = ctrtypes.MountPoint

// Mount is a --mount value, docker's HostConfig.Mounts element.
type Mount = mount.Mount

// maxMounts bounds the mounts of one container (-v and --mount together).
const maxMounts = 256

// volumeNamePattern is docker's rule for a local volume name: it is a
// directory name under the engine root, so no '/', and never "." or "..".
// It is compiled on first use, not at every start of a client.
var volumeNamePattern = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)
})

// maxVolumeName keeps a volume's directory name within NAME_MAX.
const maxVolumeName = 255

// ValidateVolumeName reports, as errdefs.ErrInvalidArgument, a name no
// volume can have.
func ValidateVolumeName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty volume name: give a name such as data: %w", errdefs.ErrInvalidArgument)
	case len(name) == 1:
		return fmt.Errorf("volume name %q is too short: names have at least two characters: %w", name, errdefs.ErrInvalidArgument)
	case len(name) > maxVolumeName:
		return fmt.Errorf("volume name %q... is longer than %d characters: %w", name[:32], maxVolumeName, errdefs.ErrInvalidArgument)
	case !volumeNamePattern().MatchString(name):
		return fmt.Errorf("%q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed: if you meant a host directory, give its absolute path: %w", name, errdefs.ErrInvalidArgument)
	}
	return nil
}

// The -v options docker accepts, by kind; each kind at most once.
var (
	rwModes          = []string{"rw", "ro"}
	labelModes       = []string{"z", "Z"} // SELinux relabelling: nothing to do without SELinux
	propagationModes = []string{"private", "rprivate", "shared", "rshared", "slave", "rslave"}
	copyModes        = []string{"nocopy"}
	consistencyModes = []string{"consistent", "cached", "delegated"} // Docker Desktop's; no-ops on Linux
)

// validMode reports whether mode is a comma-separated list of -v options
// with at most one of each kind (moby's linuxValidMountMode).
func validMode(mode string) bool {
	if mode == "" {
		return true
	}
	counts := map[string]int{}
	for _, o := range strings.Split(mode, ",") {
		switch {
		case slices.Contains(rwModes, o):
			counts["rw"]++
		case slices.Contains(labelModes, o):
			counts["label"]++
		case slices.Contains(propagationModes, o):
			counts["propagation"]++
		case slices.Contains(copyModes, o):
			counts["copy"]++
		case slices.Contains(consistencyModes, o):
			counts["consistency"]++
		default:
			return false
		}
	}
	for _, n := range counts {
		if n > 1 {
			return false
		}
	}
	return true
}

func hasMode(mode, want string) bool { return slices.Contains(strings.Split(mode, ","), want) }

// volumeSpecError is the error of a malformed -v value.
func volumeSpecError(raw, why string) error {
	return fmt.Errorf("invalid volume specification %q (-v/--volume): %s: want HOST-PATH:CONTAINER-PATH[:ro|rw], VOLUME-NAME:CONTAINER-PATH[:ro|rw] or CONTAINER-PATH: %w",
		cutEcho(raw), why, errdefs.ErrInvalidArgument)
}

func cutEcho(s string) string {
	if len(s) > 128 {
		return s[:128] + "..."
	}
	return s
}

// ParseVolumeSpec parses a -v/--volume value as docker does (moby's
// linuxParser.ParseMountRaw): HOST-PATH:CONTAINER-PATH[:OPTIONS] is a bind
// mount (the host path is absolute), NAME:CONTAINER-PATH[:OPTIONS] a named
// volume, CONTAINER-PATH alone an anonymous volume. OPTIONS are
// comma-separated: ro or rw, a propagation (rprivate, shared, ...), nocopy,
// z or Z. It returns the mount and the options as given (inspect's Mode).
// It checks only the syntax; the engine checks the host path at create.
func ParseVolumeSpec(raw string) (Mount, string, error) {
	arr := strings.SplitN(raw, ":", 4)
	if arr[0] == "" {
		return Mount{}, "", volumeSpecError(raw, "empty source or destination")
	}
	if len(arr) > 1 && arr[1] == "" {
		return Mount{}, "", volumeSpecError(raw, "empty destination")
	}
	var m Mount
	var mode string
	switch len(arr) {
	case 1:
		m.Target = arr[0]
	case 2:
		if validMode(arr[1]) {
			// "/data:ro": a volume cannot have options without a source.
			return Mount{}, "", volumeSpecError(raw, "options without a source")
		}
		m.Source, m.Target = arr[0], arr[1]
	case 3:
		m.Source, m.Target, mode = arr[0], arr[1], arr[2]
	default:
		return Mount{}, "", volumeSpecError(raw, "too many colons")
	}
	if !validMode(mode) {
		return Mount{}, "", volumeSpecError(raw, fmt.Sprintf("invalid options %q: want ro or rw, a propagation (rprivate, rshared, rslave, ...), nocopy, z or Z, each at most once", mode))
	}
	if path.IsAbs(m.Source) {
		m.Type = mount.TypeBind
	} else {
		m.Type = mount.TypeVolume
		if m.Source != "" {
			if err := ValidateVolumeName(m.Source); err != nil {
				return Mount{}, "", fmt.Errorf("invalid volume specification %q (-v/--volume): %w", cutEcho(raw), err)
			}
		}
	}
	m.ReadOnly = hasMode(mode, "ro")
	for _, p := range propagationModes {
		if hasMode(mode, p) {
			if m.Type != mount.TypeBind {
				return Mount{}, "", volumeSpecError(raw, fmt.Sprintf("propagation %q applies to bind mounts only", p))
			}
			m.BindOptions = &mount.BindOptions{Propagation: mount.Propagation(p)}
		}
	}
	if hasMode(mode, "nocopy") {
		if m.Type != mount.TypeVolume {
			return Mount{}, "", volumeSpecError(raw, "nocopy applies to volumes only")
		}
		m.VolumeOptions = &mount.VolumeOptions{NoCopy: true}
	}
	if err := ValidateMount(&m); err != nil {
		return Mount{}, "", fmt.Errorf("invalid volume specification %q (-v/--volume): %w", cutEcho(raw), err)
	}
	return m, mode, nil
}

// mountConfigError is the error of a --mount value the engine refuses.
func mountConfigError(m *Mount, format string, args ...any) error {
	return fmt.Errorf("invalid mount config for type %q (--mount): %s: %w", m.Type, fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
}

// ValidateMount checks a --mount value as moby's ValidateMountConfig does,
// without touching the filesystem: the engine supports the types bind,
// volume (the local driver) and tmpfs.
func ValidateMount(m *Mount) error {
	extra := func(field string) error { return mountConfigError(m, "field %s must not be specified", field) }
	if m.Type != mount.TypeBind && m.BindOptions != nil {
		return extra("BindOptions (bind-*)")
	}
	if m.Type != mount.TypeVolume && m.VolumeOptions != nil {
		return extra("VolumeOptions (volume-*)")
	}
	if m.Type != mount.TypeTmpfs && m.TmpfsOptions != nil {
		return extra("TmpfsOptions (tmpfs-*)")
	}
	if m.ImageOptions != nil {
		return extra("ImageOptions (image-*)")
	}
	if m.ClusterOptions != nil {
		return extra("ClusterOptions")
	}
	if m.Target == "" {
		return mountConfigError(m, "field Target (dst) must not be empty: give the path in the container")
	}
	if !path.IsAbs(m.Target) {
		return mountConfigError(m, "mount path %q must be absolute", m.Target)
	}
	if path.Clean(m.Target) == "/" {
		return mountConfigError(m, "destination can't be '/'")
	}
	if strings.ContainsRune(m.Target, 0) || strings.ContainsRune(m.Source, 0) {
		return mountConfigError(m, "paths must not contain NUL")
	}
	switch m.Consistency {
	case "", mount.ConsistencyDefault, mount.ConsistencyFull, mount.ConsistencyCached, mount.ConsistencyDelegated:
	default:
		return mountConfigError(m, "invalid consistency %q: want consistent, cached, delegated or default", m.Consistency)
	}
	switch m.Type {
	case mount.TypeBind:
		if m.Source == "" {
			return mountConfigError(m, "field Source (src) must not be empty: give the host path")
		}
		if !filepath.IsAbs(m.Source) {
			return mountConfigError(m, "bind source %q must be an absolute path: give the full host path", m.Source)
		}
		if o := m.BindOptions; o != nil {
			if o.Propagation != "" && !slices.Contains(mount.Propagations, o.Propagation) {
				return mountConfigError(m, "invalid propagation mode %q: want one of rprivate, private, rshared, shared, rslave, slave", o.Propagation)
			}
			if o.CreateMountpoint {
				return mountConfigError(m, "bind-create-src is not supported: create the host directory first")
			}
			if (o.ReadOnlyNonRecursive || o.ReadOnlyForceRecursive) && !m.ReadOnly {
				return mountConfigError(m, "bind-recursive=writable and bind-recursive=readonly need readonly as well")
			}
			if o.ReadOnlyNonRecursive && o.ReadOnlyForceRecursive {
				return mountConfigError(m, "bind-recursive is either writable or readonly")
			}
		}
	case mount.TypeVolume:
		if m.Source != "" {
			if err := ValidateVolumeName(m.Source); err != nil {
				return fmt.Errorf("invalid mount config for type %q (--mount): %w", m.Type, err)
			}
		}
		if o := m.VolumeOptions; o != nil {
			if o.Subpath != "" {
				return mountConfigError(m, "volume-subpath is not supported: mount the whole volume")
			}
			if d := o.DriverConfig; d != nil {
				if d.Name != "" && d.Name != VolumeDriver {
					return mountConfigError(m, "volume driver %q is not supported: the engine has the %s driver only", d.Name, VolumeDriver)
				}
				if len(d.Options) > 0 {
					return mountConfigError(m, "volume-opt is not supported: the %s driver takes no options", VolumeDriver)
				}
			}
			if err := CheckLabels(o.Labels); err != nil {
				return fmt.Errorf("invalid mount config for type %q (--mount): volume-label: %w", m.Type, err)
			}
		}
	case mount.TypeTmpfs:
		if m.Source != "" {
			return mountConfigError(m, "field Source (src) must not be specified for tmpfs")
		}
		if o := m.TmpfsOptions; o != nil {
			if o.SizeBytes < 0 {
				return mountConfigError(m, "tmpfs-size %d must not be negative", o.SizeBytes)
			}
			if o.Mode&^0o7777 != 0 {
				return mountConfigError(m, "tmpfs-mode %o: want permission bits (at most 7777)", uint32(o.Mode))
			}
			for _, opt := range o.Options {
				if len(opt) != 1 || (opt[0] != "exec" && opt[0] != "noexec") {
					return mountConfigError(m, "tmpfs option %q is not supported: want exec or noexec", strings.Join(opt, "="))
				}
			}
		}
	case "":
		return mountConfigError(m, "type is required: want bind, volume or tmpfs")
	default:
		return mountConfigError(m, "mount type unknown: want bind, volume or tmpfs")
	}
	return nil
}

// Volume is a volume as `engine volume inspect` shows it: docker's shape.
type Volume = volume.Volume

// VolumeCreateRequest is the body of a volume create: docker's shape. Only
// Name and Labels are used; Driver is empty or "local".
type VolumeCreateRequest = volume.CreateRequest

// VolumePruneReport says what a prune removed: docker's shape.
type VolumePruneReport = volume.PruneReport

// VolumeDriver is the one volume driver: a directory under the engine
// root.
const VolumeDriver = "local"

// CheckMounts validates the -v and --mount values of o (syntax only) and
// that no two mounts share a destination.
func CheckMounts(o *CreateOptions) error {
	if n := len(o.Binds) + len(o.Mounts); n > maxMounts {
		return fmt.Errorf("invalid container options: %d mounts: at most %d are allowed: %w", n, maxMounts, errdefs.ErrInvalidArgument)
	}
	seen := map[string]bool{}
	dup := func(target string) error {
		t := path.Clean(target)
		if seen[t] {
			return fmt.Errorf("duplicate mount point %s: give each destination once: %w", t, errdefs.ErrInvalidArgument)
		}
		seen[t] = true
		return nil
	}
	for _, raw := range o.Binds {
		m, _, err := ParseVolumeSpec(raw)
		if err != nil {
			return err
		}
		if err := dup(m.Target); err != nil {
			return err
		}
	}
	for i := range o.Mounts {
		if err := ValidateMount(&o.Mounts[i]); err != nil {
			return err
		}
		if err := dup(o.Mounts[i].Target); err != nil {
			return err
		}
	}
	return nil
}
