package network

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/pkg/netns"
	"golang.org/x/sys/unix"
)

// NetNSPath is where the network namespace of container id is bound: a
// fixed path, so that the container's OCI spec (written at create) can name
// it, and the engine can find it again after a restart.
func (m *Manager) NetNSPath(id string) string {
	return filepath.Join(m.root, "netns", id)
}

// CreateNetNS creates a new network namespace bound at NetNSPath(id). An
// existing one (a start after a crash) is removed first: a start always
// gets a fresh namespace.
//
// containerd's pkg/netns creates namespaces under random names only; this
// creates one there and binds it again at the fixed path.
func (m *Manager) CreateNetNS(id string) (_ string, retErr error) {
	if err := validID(id); err != nil {
		return "", err
	}
	p := m.NetNSPath(id)
	if err := RemoveNetNS(p); err != nil {
		return "", err
	}
	staging, err := netns.NewNetNS(filepath.Join(m.root, "netns", ".new"))
	if err != nil {
		return "", fmt.Errorf("create network namespace: %w", err)
	}
	defer func() {
		if err := staging.Remove(); err != nil && retErr == nil {
			retErr = fmt.Errorf("remove staging network namespace: %w", err)
		}
		if retErr != nil {
			RemoveNetNS(p)
		}
	}()
	f, err := os.OpenFile(p, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("create network namespace mount point: %w", err)
	}
	f.Close()
	if err := unix.Mount(staging.GetPath(), p, "none", unix.MS_BIND, ""); err != nil {
		return "", fmt.Errorf("bind network namespace at %s: %w", p, err)
	}
	return p, nil
}

// RemoveNetNS unmounts and removes a network namespace bound at p; a
// missing one is no error.
func RemoveNetNS(p string) error {
	if p == "" {
		return nil
	}
	if err := netns.LoadNetNS(p).Remove(); err != nil {
		return fmt.Errorf("remove network namespace %s: %w", p, err)
	}
	return nil
}
