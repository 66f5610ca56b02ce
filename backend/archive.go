package backend

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/containerd/continuity/fs"
	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/io/archive"
)

// checkContainerPath refuses a path that is not absolute inside the
// container.
func checkContainerPath(p string) error {
	if p == "" || !path.IsAbs(p) || strings.ContainsRune(p, 0) {
		return fmt.Errorf("invalid path %q in the container: want an absolute path: %w", p, errdefs.ErrInvalidArgument)
	}
	return nil
}

// ArchivePath writes the file or directory at p of the container, running
// or not, to w as a tar stream whose entries are named from p's base name
// (docker cp's "get archive").
func (e *Engine) ArchivePath(ctx context.Context, ref, p string, w io.Writer) (PathStat, error) {
	if err := checkContainerPath(p); err != nil {
		return PathStat{}, err
	}
	_, t, err := e.rootfsOf(ref)
	if err != nil {
		return PathStat{}, err
	}
	var st PathStat
	err = e.withRootfs(ctx, t, false, func(root string, _ bool) error {
		full, err := fs.RootPath(root, p)
		if err != nil {
			return fmt.Errorf("path %s: %w", p, err)
		}
		fi, err := os.Lstat(full)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("Could not find the file %s in container %s: %w", p, t.id[:12], errdefs.ErrNotFound)
			}
			return err
		}
		st = PathStat{Name: path.Base(p), Size: fi.Size(), Mode: fi.Mode(), ModTime: fi.ModTime()}
		name := path.Base(path.Clean(p))
		if name == "/" {
			name = "."
		}
		return archive.WriteTar(ctx, w, full, name)
	})
	return st, err
}

// StatPath describes the file or directory at p of the container, running
// or not, without reading it (docker cp's stat of its destination). A
// symbolic link is described itself; LinkTarget is where it leads inside
// the container.
func (e *Engine) StatPath(ctx context.Context, ref, p string) (PathStat, error) {
	if err := checkContainerPath(p); err != nil {
		return PathStat{}, err
	}
	_, t, err := e.rootfsOf(ref)
	if err != nil {
		return PathStat{}, err
	}
	var st PathStat
	err = e.withRootfs(ctx, t, false, func(root string, _ bool) error {
		dir, err := fs.RootPath(root, path.Dir(path.Clean(p)))
		if err != nil {
			return fmt.Errorf("path %s: %w", p, err)
		}
		full := filepath.Join(dir, path.Base(path.Clean(p)))
		fi, err := os.Lstat(full)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("Could not find the file %s in container %s: %w", p, t.id[:12], errdefs.ErrNotFound)
			}
			return err
		}
		st = PathStat{Name: path.Base(p), Size: fi.Size(), Mode: fi.Mode(), ModTime: fi.ModTime()}
		if fi.Mode()&os.ModeSymlink != 0 {
			resolved, err := fs.RootPath(root, p)
			if err != nil {
				return fmt.Errorf("path %s: %w", p, err)
			}
			rel, _ := filepath.Rel(root, resolved)
			st.LinkTarget = "/" + filepath.ToSlash(rel)
		}
		return nil
	})
	return st, err
}

// Export writes the container's whole filesystem (without what is mounted
// into it) to w as a tar stream, as docker export.
func (e *Engine) Export(ctx context.Context, ref string, w io.Writer) error {
	_, t, err := e.rootfsOf(ref)
	if err != nil {
		return err
	}
	t.active = false // the snapshot, not the running view with /proc
	return e.withRootfs(ctx, t, false, func(root string, _ bool) error {
		tw := tar.NewWriter(w)
		ents, err := os.ReadDir(root)
		if err != nil {
			return err
		}
		for _, ent := range ents {
			if err := archive.WriteTree(ctx, tw, filepath.Join(root, ent.Name()), ent.Name()); err != nil {
				return err
			}
		}
		return tw.Close()
	})
}

// ExtractToDir extracts the tar stream r into the directory dir of the
// container, running or not (docker cp's "put archive"). Names are
// resolved inside the container's root: "..", absolute names and symlinks
// cannot lead out of it.
func (e *Engine) ExtractToDir(ctx context.Context, ref, dir string, r io.Reader) error {
	if err := checkContainerPath(dir); err != nil {
		return err
	}
	_, t, err := e.rootfsOf(ref)
	if err != nil {
		return err
	}
	return e.withRootfs(ctx, t, true, func(root string, _ bool) error {
		base, err := fs.RootPath(root, dir)
		if err != nil {
			return fmt.Errorf("path %s: %w", dir, err)
		}
		fi, err := os.Stat(base)
		if err != nil || !fi.IsDir() {
			return fmt.Errorf("%s is not a directory in container %s: copy into an existing directory: %w", dir, t.id[:12], errdefs.ErrNotFound)
		}
		rel, _ := filepath.Rel(root, base)
		return ExtractTar(r, root, "/"+filepath.ToSlash(rel), "")
	})
}

// Diff lists what the container changed in its image's filesystem.
func (e *Engine) Diff(ctx context.Context, ref string) ([]Change, error) {
	_, t, err := e.rootfsOf(ref)
	if err != nil {
		return nil, err
	}
	var out []Change
	err = e.withLayers(ctx, t, func(lower, upper string) error {
		return fs.Changes(ctx, lower, upper, func(k fs.ChangeKind, p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			switch k {
			case fs.ChangeKindModify:
				out = append(out, Change{Path: p, Kind: 0})
			case fs.ChangeKindAdd:
				out = append(out, Change{Path: p, Kind: 1})
			case fs.ChangeKindDelete:
				out = append(out, Change{Path: p, Kind: 2})
			}
			return nil
		})
	})
	return withChangedParents(out), err
}

// withChangedParents adds, before the first change below it, a "changed"
// entry for each directory that holds a change but is not listed itself, as
// docker's diff does ("C /etc" before "A /etc/foo"): a directory's mtime
// and entries changed even when its own attributes did not. The root is
// never listed. changes come in walk order, a parent before its children.
func withChangedParents(changes []Change) []Change {
	if len(changes) == 0 {
		return changes
	}
	listed := make(map[string]bool, len(changes))
	for _, c := range changes {
		listed[c.Path] = true
	}
	out := make([]Change, 0, len(changes))
	for _, c := range changes {
		var missing []string
		for dir := path.Dir(c.Path); dir != "/" && dir != "." && !listed[dir]; dir = path.Dir(dir) {
			missing = append(missing, dir)
		}
		for i := len(missing) - 1; i >= 0; i-- {
			listed[missing[i]] = true
			out = append(out, Change{Path: missing[i], Kind: 0})
		}
		out = append(out, c)
	}
	return out
}
