package libcontainerd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// withUser resolves user ("name", "uid", "uid:gid", "name:group") in the
// container's root filesystem with containerd's oci.WithUser, and adds
// the user's supplementary groups from /etc/group (oci.WithAdditionalGIDs)
// as Docker does.
func withUser(user string) oci.SpecOpts {
	return func(ctx context.Context, client oci.Client, c *containers.Container, s *oci.Spec) error {
		if err := oci.WithUser(user)(ctx, client, c, s); err != nil {
			return classifyUserError(fmt.Sprintf("user %q", user), err)
		}
		name, _, _ := strings.Cut(user, ":")
		if _, err := strconv.Atoi(name); err == nil {
			name = strconv.FormatUint(uint64(s.Process.User.UID), 10)
		}
		if err := oci.WithAdditionalGIDs(name)(ctx, client, c, s); err != nil {
			return classifyUserError(fmt.Sprintf("user %q", user), err)
		}
		return nil
	}
}

// classifyUserError makes a user or group the root filesystem does not
// know, or a malformed one, an ErrInvalidArgument.
func classifyUserError(what string, err error) error {
	switch {
	case errors.Is(err, oci.ErrNoUsersFound), errors.Is(err, oci.ErrNoGroupsFound):
		return fmt.Errorf("%s: no such user or group in the image's /etc/passwd or /etc/group: give one it has, or a numeric uid[:gid]: %w", what, errdefs.ErrInvalidArgument)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: the image has no /etc/passwd or /etc/group to look the name up in: give a numeric uid[:gid]: %w", what, errdefs.ErrInvalidArgument)
	case strings.Contains(err.Error(), "invalid USER value"):
		return fmt.Errorf("%s: %v: want name, uid, uid:gid or name:group: %w", what, err, errdefs.ErrInvalidArgument)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// withUserCapabilities keeps a process that does not run as root to the
// bounding set, as Docker does: effective, permitted, inheritable and
// ambient sets are empty.
func withUserCapabilities(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
	if s.Process != nil && s.Process.User.UID != 0 {
		userCapabilities(s.Process)
	}
	return nil
}

// userCapabilities gives p Docker's capability sets for its user: all of
// the bounding set for root, the bounding set only for any other user.
func userCapabilities(p *specs.Process) {
	c := p.Capabilities
	if c == nil {
		return
	}
	if p.User.UID == 0 {
		c.Effective = append([]string(nil), c.Bounding...)
		c.Permitted = append([]string(nil), c.Bounding...)
		return
	}
	c.Effective, c.Permitted, c.Inheritable, c.Ambient = nil, nil, nil, nil
}

// ProcessSpec returns a copy of the process of container id's spec, with
// user, environment, working directory, capabilities, no-new-privileges,
// rlimits and AppArmor profile as the container runs them: what an exec
// starts from, as docker exec does. A non-empty user replaces the
// container's (resolved in its root filesystem as WithUser).
func (c *client) ProcessSpec(ctx context.Context, id, user string) (*specs.Process, error) {
	ctx, err := c.enter(ctx)
	if err != nil {
		return nil, err
	}
	ct, err := c.container(ctx, id)
	if err != nil {
		return nil, err
	}
	spec := ct.spec
	if spec == nil || spec.Process == nil {
		return nil, fmt.Errorf("container %s has no process in its spec: %w", id, errdefs.ErrFailedPrecondition)
	}
	if user == "" {
		s, err := copySpec(&specs.Spec{Process: spec.Process})
		if err != nil {
			return nil, err
		}
		return s.Process, nil
	}
	s, err := copySpec(spec)
	if err != nil {
		return nil, err
	}
	info, err := ct.ctr.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	if err := withUser(user)(ctx, c.cc, &info, s); err != nil {
		return nil, err
	}
	userCapabilities(s.Process)
	return s.Process, nil
}
