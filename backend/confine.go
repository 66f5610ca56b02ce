package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/containerd/containerd/v2/contrib/apparmor"
	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/cap"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultCapabilities is Docker's default capability set, which every
// container gets unless --privileged, --cap-add or --cap-drop change it.
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// AppArmorProfile is the profile containers run under where the host has
// AppArmor: containerd's default template (Docker's docker-default).
const AppArmorProfile = "tend-default"

// capabilities is Docker's TweakCapabilities: the default set less the
// dropped plus the added ones; ALL added starts from every capability,
// ALL dropped from none.
func capabilities(add, drop []string) ([]string, error) {
	norm := func(flag string, in []string) ([]string, error) {
		var out []string
		for _, c := range in {
			n, err := NormalizeCapability(c)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", flag, err)
			}
			out = append(out, n)
		}
		return out, nil
	}
	adds, err := norm("--cap-add", add)
	if err != nil {
		return nil, err
	}
	drops, err := norm("--cap-drop", drop)
	if err != nil {
		return nil, err
	}
	var caps []string
	switch {
	case slices.Contains(adds, "ALL"):
		all, err := allCapabilities()
		if err != nil {
			return nil, err
		}
		for _, c := range all {
			if !slices.Contains(drops, c) {
				caps = append(caps, c)
			}
		}
		return caps, nil
	case slices.Contains(drops, "ALL"):
		caps = []string{}
	default:
		for _, c := range DefaultCapabilities {
			if !slices.Contains(drops, c) {
				caps = append(caps, c)
			}
		}
	}
	for _, c := range adds {
		if !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	return caps, nil
}

// allCapabilities is every capability the engine itself holds: what
// --privileged and --cap-add ALL give (containerd's
// oci.WithAllCurrentCapabilities).
func allCapabilities() ([]string, error) {
	caps, err := cap.Current()
	if err != nil {
		return nil, fmt.Errorf("read the engine's capabilities: %w", err)
	}
	return caps, nil
}

// securityOpts is the parsed --security-opt list.
type securityOpts struct {
	noNewPrivileges bool
	seccomp         string // "": the default profile; "unconfined"; else a profile's JSON
	apparmor        string // "": the default profile
}

var nnpRE = regexp.MustCompile(`^no-new-privileges(?:[:=](true|false))?$`)

// parseSecurityOpts parses docker's --security-opt values:
// no-new-privileges[:true|false], seccomp=unconfined|builtin|<profile
// JSON>|<absolute path of a profile>, apparmor=<profile>|unconfined.
func parseSecurityOpts(opts []string) (securityOpts, error) {
	var so securityOpts
	for _, o := range opts {
		if m := nnpRE.FindStringSubmatch(o); m != nil {
			so.noNewPrivileges = m[1] != "false"
			continue
		}
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			k, v, ok = strings.Cut(o, ":")
		}
		switch {
		case ok && k == "seccomp":
			p, err := seccompProfile(v)
			if err != nil {
				return so, err
			}
			so.seccomp = p
		case ok && k == "apparmor" && v != "":
			so.apparmor = v
		default:
			return so, invalid("--security-opt %q: want no-new-privileges, seccomp=unconfined|<profile.json>, or apparmor=<profile>", o)
		}
	}
	return so, nil
}

// seccompProfile checks a --security-opt seccomp= value and returns
// "unconfined", "" (the default profile) or the profile's JSON.
func seccompProfile(v string) (string, error) {
	switch {
	case v == "unconfined":
		return v, nil
	case v == "builtin" || v == "":
		return "", nil
	case strings.HasPrefix(strings.TrimSpace(v), "{"):
	case filepath.IsAbs(v):
		b, err := os.ReadFile(v)
		if err != nil {
			return "", invalid("--security-opt seccomp=%s: cannot read the profile: %v: give a readable OCI seccomp profile (JSON), or seccomp=unconfined", v, err)
		}
		v = string(b)
	default:
		return "", invalid("--security-opt seccomp=%s: want unconfined, builtin, an absolute path of a profile, or the profile's JSON", v)
	}
	var p specs.LinuxSeccomp
	dec := json.NewDecoder(strings.NewReader(v))
	if err := dec.Decode(&p); err != nil {
		return "", invalid("--security-opt seccomp: the profile is not valid JSON: %v: give an OCI seccomp profile such as Docker's default.json", err)
	}
	if p.DefaultAction == "" {
		return "", invalid("--security-opt seccomp: the profile has no defaultAction: give an OCI seccomp profile such as Docker's default.json")
	}
	return v, nil
}

// tmpfsOptRE lists the options --tmpfs takes, as docker's.
var tmpfsOptRE = regexp.MustCompile(`^(?:rw|ro|exec|noexec|suid|nosuid|dev|nodev|sync|async|dirsync|atime|noatime|relatime|strictatime|nodiratime|size=\d+[kmgKMG%]?|nr_inodes=\d+[kmgKMG]?|mode=[0-7]{1,4}|uid=\d+|gid=\d+)$`)

// checkTmpfs validates the --tmpfs mounts: a clean absolute destination
// other than /, and known options.
func checkTmpfs(m map[string]string) error {
	for dst, opts := range m {
		if !filepath.IsAbs(dst) || filepath.Clean(dst) != dst || dst == "/" {
			return invalid("--tmpfs %s: want a clean absolute path other than / as the mount point", dst)
		}
		if opts == "" {
			continue
		}
		for _, o := range strings.Split(opts, ",") {
			if !tmpfsOptRE.MatchString(o) {
				return invalid("--tmpfs %s:%s: unknown or malformed option %q: want size=N[k|m|g], mode=OCTAL, uid=, gid=, ro, noexec, ...", dst, opts, o)
			}
		}
	}
	return nil
}

// checkConfinement validates the image-config and confinement options.
func checkConfinement(o *CreateOptions) error {
	if strings.ContainsAny(o.User, " \t\n") || strings.Count(o.User, ":") > 1 {
		return invalid("--user %q: want name, uid, uid:gid or name:group", o.User)
	}
	if len(o.Entrypoint) > 1 && o.Entrypoint[0] == "" {
		return invalid("--entrypoint: its first word is empty: give a program, or one empty string to clear the image's")
	}
	if o.StopSignal != "" {
		if _, err := ParseStopSignal(o.StopSignal); err != nil {
			return err
		}
	}
	if t := o.StopTimeout; t != nil && (*t < -1 || *t > MaxTimeoutSeconds) {
		return invalid("--stop-timeout %d: want seconds from 0 to %d, or -1 to wait forever", *t, MaxTimeoutSeconds)
	}
	if _, err := capabilities(o.CapAdd, o.CapDrop); err != nil {
		return err
	}
	if _, err := parseSecurityOpts(o.SecurityOpt); err != nil {
		return err
	}
	if err := checkTmpfs(o.Tmpfs); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, u := range o.Ulimits {
		if err := checkUlimit(u); err != nil {
			return err
		}
		if seen[u.Name] {
			return invalid("--ulimit %s given twice: give each limit once", u.Name)
		}
		seen[u.Name] = true
	}
	if o.ShmSize < 0 || o.ShmSize > MaxShmSize {
		return invalid("--shm-size %d: want a size from 1 byte to 1TiB (0: the default 64MiB)", o.ShmSize)
	}
	return nil
}

// confinementOpts are the spec options that confine a container as Docker
// does by default (Docker's capabilities, containerd's default seccomp
// profile, masked and read-only /proc and /sys paths from the default
// spec, AppArmor where the host has it), changed by the options.
func (e *Engine) confinementOpts(o *CreateOptions) ([]oci.SpecOpts, error) {
	so, err := parseSecurityOpts(o.SecurityOpt)
	if err != nil {
		return nil, err
	}
	// Docker's default: setuid programs work unless asked otherwise.
	opts := []oci.SpecOpts{oci.WithNewPrivileges}
	if so.noNewPrivileges {
		opts = append(opts, oci.WithNoNewPrivileges)
	}
	if o.Privileged {
		opts = append(opts, oci.WithPrivileged, oci.WithHostDevices, oci.WithAllDevicesAllowed)
	} else {
		caps, err := capabilities(o.CapAdd, o.CapDrop)
		if err != nil {
			return nil, err
		}
		opts = append(opts, oci.WithCapabilities(caps), withoutInheritedCapabilities)
		switch so.seccomp {
		case "":
			// After the capabilities: the profile allows the calls they grant.
			opts = append(opts, seccomp.WithDefaultProfile())
		case "unconfined":
			opts = append(opts, oci.WithSeccompUnconfined)
		default:
			opts = append(opts, withSeccompJSON(so.seccomp))
		}
		if e.apparmor {
			switch so.apparmor {
			case "":
				opts = append(opts, apparmor.WithDefaultProfile(AppArmorProfile))
			case "unconfined":
			default:
				opts = append(opts, apparmor.WithProfile(so.apparmor))
			}
		}
	}
	if o.ReadonlyRootfs {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	if len(o.Tmpfs) > 0 {
		dsts := make([]string, 0, len(o.Tmpfs))
		for d := range o.Tmpfs {
			dsts = append(dsts, d)
		}
		slices.Sort(dsts)
		var ms []specs.Mount
		for _, d := range dsts {
			mo := []string{"noexec", "nosuid", "nodev"}
			if v := o.Tmpfs[d]; v != "" {
				mo = append(mo, strings.Split(v, ",")...)
			}
			ms = append(ms, specs.Mount{Destination: d, Type: "tmpfs", Source: "tmpfs", Options: mo})
		}
		opts = append(opts, oci.WithoutMounts(dsts...), oci.WithMounts(ms))
	}
	for _, u := range o.Ulimits {
		opts = append(opts, oci.WithRlimit(&specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(u.Name), Soft: u.RlimitSoft(), Hard: u.RlimitHard()}))
	}
	if o.ShmSize > 0 {
		kb := (o.ShmSize + 1023) / 1024
		opts = append(opts, oci.WithDevShmSize(kb))
	}
	return opts, nil
}

// withoutInheritedCapabilities empties the inheritable and ambient sets,
// as Docker does since CVE-2022-24769.
func withoutInheritedCapabilities(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
	if s.Process != nil && s.Process.Capabilities != nil {
		s.Process.Capabilities.Inheritable = nil
		s.Process.Capabilities.Ambient = nil
	}
	return nil
}

// withSeccompJSON sets a seccomp profile checked by seccompProfile.
func withSeccompJSON(profile string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		var p specs.LinuxSeccomp
		if err := json.Unmarshal([]byte(profile), &p); err != nil {
			return invalid("--security-opt seccomp: %v", err)
		}
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		s.Linux.Seccomp = &p
		return nil
	}
}
