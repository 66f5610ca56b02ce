package supervisor

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// configTOML is containerd's configuration: version 2, which containerd 1.x
// and 2.x both read. Disabled plugins keep containerd away from system paths
// (CRI, NRI, /opt) and make it start fast; ids unknown to the running
// version are ignored.
func configTOML(root, address string) string {
	disabled := []string{
		"io.containerd.grpc.v1.cri",
		"io.containerd.cri.v1.images",
		"io.containerd.cri.v1.runtime",
		"io.containerd.nri.v1.nri",
		"io.containerd.internal.v1.opt",
		"io.containerd.tracing.processor.v1.otlp",
		"io.containerd.internal.v1.tracing",
		"io.containerd.snapshotter.v1.aufs",
		"io.containerd.snapshotter.v1.btrfs",
		"io.containerd.snapshotter.v1.zfs",
		"io.containerd.snapshotter.v1.devmapper",
		"io.containerd.snapshotter.v1.blockfile",
		"io.containerd.snapshotter.v1.erofs",
		"io.containerd.differ.v1.erofs",
	}
	q := make([]string, len(disabled))
	for i, id := range disabled {
		q[i] = strconv.Quote(id)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "version = 2\n")
	fmt.Fprintf(&b, "root = %s\n", strconv.Quote(filepath.Join(root, "root")))
	fmt.Fprintf(&b, "state = %s\n", strconv.Quote(filepath.Join(root, "state")))
	fmt.Fprintf(&b, "disabled_plugins = [%s]\n\n", strings.Join(q, ", "))
	fmt.Fprintf(&b, "[grpc]\n  address = %s\n\n", strconv.Quote(address))
	fmt.Fprintf(&b, "[ttrpc]\n  address = %s\n\n", strconv.Quote(address+".ttrpc"))
	fmt.Fprintf(&b, "[debug]\n  address = \"\"\n\n")
	fmt.Fprintf(&b, "[metrics]\n  address = \"\"\n")
	return b.String()
}

func (d *Daemon) env() []string {
	var env []string
	path := ""
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, "PATH="):
			path = strings.TrimPrefix(kv, "PATH=")
		case strings.HasPrefix(kv, "NOTIFY_SOCKET="):
			// Our service manager must not hear containerd's READY.
		case strings.HasPrefix(kv, "XDG_RUNTIME_DIR="):
			// Set below.
		default:
			env = append(env, kv)
		}
	}
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	dirs := append(append([]string{}, d.cfg.ExtraPath...), path)
	// containerd stages checkpoints in XDG_RUNTIME_DIR (else /tmp) and does
	// not always remove them: keep them under our root.
	return append(env, "PATH="+strings.Join(dirs, string(os.PathListSeparator)),
		"XDG_RUNTIME_DIR="+d.runtimeDir())
}

// runtimeDir is containerd's private scratch dir under Root.
func (d *Daemon) runtimeDir() string { return filepath.Join(d.cfg.Root, "run") }
