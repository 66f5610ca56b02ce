package cli

import (
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/mount"
	"github.com/spf13/cobra"

	backendtypes "github.com/tendhq/tend/backend/types"
	"github.com/tendhq/tend/cmd/internal/api"
)

// VolumeFlags are the -v/--volume and --mount flags of run and create.
type VolumeFlags struct {
	Volumes []string
	Mounts  []string
}

// Register adds the flags to cmd.
func (f *VolumeFlags) Register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.Volumes, "volume", "v", nil,
		"bind mount a host path or mount a volume: HOST-PATH:CONTAINER-PATH[:ro|rw], VOLUME:CONTAINER-PATH[:ro|rw] or CONTAINER-PATH (anonymous volume)")
	fl.StringArrayVar(&f.Mounts, "mount", nil,
		"attach a mount: type=bind|volume|tmpfs,src=...,dst=...[,readonly][,volume-nocopy][,bind-propagation=...][,tmpfs-size=...][,tmpfs-mode=...]")
}

// Apply checks the flags and puts them into o: -v values go as they are
// (the engine parses them, as docker's daemon does), --mount values as
// docker's mount documents.
func (f *VolumeFlags) Apply(o *api.CreateOptions) error {
	for _, v := range f.Volumes {
		if _, _, err := backendtypes.ParseVolumeSpec(v); err != nil {
			return &StatusError{Code: ExitEngineError, Err: err}
		}
		o.Binds = append(o.Binds, v)
	}
	for _, v := range f.Mounts {
		m, err := ParseMount(v)
		if err != nil {
			return &StatusError{Code: ExitEngineError, Err: fmt.Errorf("invalid argument %q for \"--mount\" flag: %w", v, err)}
		}
		o.Mounts = append(o.Mounts, m)
	}
	return nil
}

// ParseMount parses a --mount value as docker's CLI does (opts.MountOpt):
// comma-separated key=value fields, CSV-quoted when a value holds a comma;
// the type defaults to volume. A source starting with "." is taken relative
// to the working directory. The errors are errdefs.ErrInvalidArgument.
func ParseMount(value string) (api.Mount, error) {
	m, err := parseMount(value)
	if err != nil {
		return m, fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	if err := backendtypes.ValidateMount(&m); err != nil {
		return m, err
	}
	return m, nil
}

func parseMount(value string) (api.Mount, error) {
	m := api.Mount{Type: mount.TypeVolume}
	value = strings.TrimSpace(value)
	if value == "" {
		return m, errors.New("value is empty")
	}
	fields, err := csv.NewReader(strings.NewReader(value)).Read()
	if err != nil {
		return m, err
	}
	bindOpts := func() *mount.BindOptions {
		if m.BindOptions == nil {
			m.BindOptions = &mount.BindOptions{}
		}
		return m.BindOptions
	}
	volOpts := func() *mount.VolumeOptions {
		if m.VolumeOptions == nil {
			m.VolumeOptions = &mount.VolumeOptions{}
		}
		return m.VolumeOptions
	}
	tmpfsOpts := func() *mount.TmpfsOptions {
		if m.TmpfsOptions == nil {
			m.TmpfsOptions = &mount.TmpfsOptions{}
		}
		return m.TmpfsOptions
	}
	for _, field := range fields {
		key, val, hasValue := strings.Cut(field, "=")
		if k := strings.TrimSpace(key); k != key {
			return m, fmt.Errorf("invalid option '%s' in '%s': option should not have whitespace", k, field)
		}
		if hasValue {
			v := strings.TrimSpace(val)
			if v == "" {
				return m, fmt.Errorf("invalid value for '%s': value is empty", key)
			}
			if v != val {
				return m, fmt.Errorf("invalid value for '%s' in '%s': value should not have whitespace", key, field)
			}
		}
		key = strings.ToLower(key)
		if !hasValue {
			switch key {
			case "readonly", "ro", "volume-nocopy":
			default:
				return m, fmt.Errorf("invalid field '%s' must be a key=value pair", field)
			}
		}
		switch key {
		case "type":
			m.Type = mount.Type(strings.ToLower(val))
		case "source", "src":
			m.Source = val
			if !filepath.IsAbs(val) && strings.HasPrefix(val, ".") {
				if abs, err := filepath.Abs(val); err == nil {
					m.Source = abs
				}
			}
		case "target", "dst", "destination":
			m.Target = val
		case "readonly", "ro":
			if m.ReadOnly, err = parseBool(key, val, hasValue); err != nil {
				return m, err
			}
		case "consistency":
			m.Consistency = mount.Consistency(strings.ToLower(val))
		case "bind-propagation":
			bindOpts().Propagation = mount.Propagation(strings.ToLower(val))
		case "bind-recursive":
			switch val {
			case "enabled":
			case "disabled":
				bindOpts().NonRecursive = true
			case "writable":
				bindOpts().ReadOnlyNonRecursive = true
			case "readonly":
				bindOpts().ReadOnlyForceRecursive = true
			default:
				return m, fmt.Errorf(`invalid value for %s: %s (must be "enabled", "disabled", "writable", or "readonly")`, key, val)
			}
		case "volume-nocopy":
			if volOpts().NoCopy, err = parseBool(key, val, hasValue); err != nil {
				return m, err
			}
		case "volume-label":
			k, v, _ := strings.Cut(val, "=")
			o := volOpts()
			if o.Labels == nil {
				o.Labels = map[string]string{}
			}
			o.Labels[k] = v
		case "volume-driver":
			if o := volOpts(); o.DriverConfig == nil {
				o.DriverConfig = &mount.Driver{}
			}
			m.VolumeOptions.DriverConfig.Name = val
		case "tmpfs-size":
			n, err := units.RAMInBytes(val)
			if err != nil || n < 0 {
				return m, fmt.Errorf("invalid value for %s: %s", key, val)
			}
			tmpfsOpts().SizeBytes = n
		case "tmpfs-mode":
			n, err := strconv.ParseUint(val, 8, 32)
			if err != nil {
				return m, fmt.Errorf("invalid value for %s: %s", key, val)
			}
			tmpfsOpts().Mode = os.FileMode(n)
		default:
			return m, fmt.Errorf("unknown option '%s' in '%s'", key, field)
		}
	}
	return m, nil
}

func parseBool(key, val string, hasValue bool) (bool, error) {
	if !hasValue {
		return true, nil
	}
	switch val {
	case "1", "true":
		return true, nil
	case "0", "false":
		return false, nil
	}
	return false, fmt.Errorf(`invalid value for '%s': invalid boolean value (%q): must be one of "true", "1", "false", or "0" (default "true")`, key, val)
}
