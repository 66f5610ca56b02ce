// Package archive reads and writes the tar streams of docker cp: WriteTar
// archives a file or a tree, ExtractTar extracts a stream inside a root
// directory that names cannot leave. It imports no other tend package.
package archive

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

	"github.com/containerd/continuity/fs"
	"github.com/containerd/errdefs"
)

// WriteTree writes src (a file or a directory with everything below it)
// to tw, its entries named from name; the caller closes tw.
func WriteTree(ctx context.Context, tw *tar.Writer, src, name string) error {
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
	if err := WriteTree(ctx, tw, src, name); err != nil {
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
