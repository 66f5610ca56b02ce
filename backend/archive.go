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
	"sort"
	"strings"
	"time"

	"github.com/containerd/continuity/fs"
	"github.com/containerd/errdefs"
)

// PathStat describes the path of a container that ArchivePath read, as
// docker's X-Docker-Container-Path-Stat.
type PathStat struct {
	Name       string      `json:"name"`
	Size       int64       `json:"size"`
	Mode       os.FileMode `json:"mode"`
	LinkTarget string      `json:"linkTarget,omitempty"`
	ModTime    time.Time   `json:"mtime"`
}

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
		tw := tar.NewWriter(w)
		if err := writeTree(ctx, tw, full, name); err != nil {
			return err
		}
		return tw.Close()
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
			if err := writeTree(ctx, tw, filepath.Join(root, ent.Name()), ent.Name()); err != nil {
				return err
			}
		}
		return tw.Close()
	})
}

// writeTree writes src and, for a directory, everything below it, as name.
func writeTree(ctx context.Context, tw *tar.Writer, src, name string) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rel, _ := filepath.Rel(src, p)
		n := path.Join(name, filepath.ToSlash(rel))
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return nil // not archivable (a socket): skip, as docker does
		}
		hdr.Name = n
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	})
}

// maxArchiveEntry bounds one file extracted into a container: the stream
// must not fill the engine's disk unbounded by mistake.
const maxArchiveEntry = 64 << 30

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

// ExtractTar extracts the tar stream r into dir, a path inside root; names
// cannot lead out of root ("..", absolute names, symlinks are resolved
// inside it). rename, when not empty, replaces the first element of every
// name (docker cp to a new name).
func ExtractTar(r io.Reader, root, dir, rename string) error {
	tr := tar.NewReader(r)
	var dirs []*tar.Header
	name := func(n string) string {
		if rename == "" {
			return n
		}
		n = strings.TrimPrefix(path.Clean("/"+n), "/")
		_, rest, _ := strings.Cut(n, "/")
		return path.Join(rename, rest)
	}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read the archive: %v: %w", err, errdefs.ErrInvalidArgument)
		}
		hdr.Name = name(hdr.Name)
		if hdr.Typeflag == tar.TypeLink && rename != "" {
			hdr.Linkname = path.Join(dir, name(hdr.Linkname))
		} else if hdr.Typeflag == tar.TypeLink {
			hdr.Linkname = path.Join(dir, hdr.Linkname)
		}
		target, err := fs.RootPath(root, path.Join("/", dir, hdr.Name))
		if err != nil {
			return fmt.Errorf("archive entry %q: %v: %w", hdr.Name, err, errdefs.ErrInvalidArgument)
		}
		if err := extractEntry(tr, hdr, root, target); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeDir {
			dirs = append(dirs, hdr)
		}
	}
	// Directory times last: writing into them changed them.
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i].Name) > len(dirs[j].Name) })
	for _, hdr := range dirs {
		if target, err := fs.RootPath(root, path.Join("/", dir, hdr.Name)); err == nil {
			_ = os.Chtimes(target, hdr.AccessTime, hdr.ModTime)
		}
	}
	return nil
}

// WriteTar writes src (a file or a directory with everything below it)
// to w as a tar stream whose entries are named from name.
func WriteTar(ctx context.Context, w io.Writer, src, name string) error {
	tw := tar.NewWriter(w)
	if err := writeTree(ctx, tw, src, name); err != nil {
		return err
	}
	return tw.Close()
}

func extractEntry(tr *tar.Reader, hdr *tar.Header, root, target string) error {
	mode := os.FileMode(hdr.Mode).Perm() | os.FileMode(hdr.Mode)&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky)
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := os.Mkdir(target, mode); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	case tar.TypeReg:
		if hdr.Size > maxArchiveEntry {
			return fmt.Errorf("archive entry %q is larger than %d bytes: %w", hdr.Name, int64(maxArchiveEntry), errdefs.ErrInvalidArgument)
		}
		_ = os.Remove(target)
		f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_EXCL, mode)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	case tar.TypeSymlink:
		_ = os.Remove(target)
		if err := os.Symlink(hdr.Linkname, target); err != nil {
			return err
		}
	case tar.TypeLink:
		src, err := fs.RootPath(root, path.Join("/", hdr.Linkname))
		if err != nil {
			return fmt.Errorf("archive entry %q: %v: %w", hdr.Name, err, errdefs.ErrInvalidArgument)
		}
		_ = os.Remove(target)
		if err := os.Link(src, target); err != nil {
			return err
		}
	default:
		return nil // devices, fifos: not copied
	}
	_ = os.Lchown(target, hdr.Uid, hdr.Gid)
	if hdr.Typeflag != tar.TypeSymlink {
		_ = os.Chmod(target, mode)
		_ = os.Chtimes(target, hdr.AccessTime, hdr.ModTime)
	}
	return nil
}

// Change is one path a container changed, as docker diff shows it: Kind
// 0 modified, 1 added, 2 deleted.
type Change struct {
	Path string `json:"Path"`
	Kind int    `json:"Kind"`
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
