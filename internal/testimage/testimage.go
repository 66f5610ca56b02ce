// Package testimage builds a busybox test image without any registry: from
// a statically linked busybox binary it makes a root filesystem directory
// (for containers run from a plain rootfs path) and an OCI image-layout tar
// that containerd imports (client.Import, ctr images import).
//
// Both are built from the same list of entries, with fixed timestamps, so
// the same busybox binary always gives the same image digests. The package
// has no state; its functions are safe for concurrent use on distinct
// destinations.
package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	_ "crypto/sha256" // registers sha256 for go-digest
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultRef is the name the test image is imported under.
const DefaultRef = "docker.io/library/busybox:latest"

// DefaultPath is the PATH in the image config.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// epoch is every entry's modification time, for reproducible digests.
var epoch = time.Unix(0, 0).UTC()

const (
	passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	group  = "root:x:0:\nnogroup:x:65534:\n"
)

// entry is one file, directory or symlink of the root filesystem.
type entry struct {
	path   string // relative, slash separated
	mode   os.FileMode
	dir    bool
	link   string // symlink target
	data   []byte // regular file content
	source string // regular file copied from here (the busybox binary)
	size   int64
	uid    int // owner in the image's layers (BuildRootfs leaves the owner be)
	gid    int
}

// entries lists the root filesystem: busybox, a symlink per applet, a few
// directories and /etc files, parents before children.
func entries(busybox string) ([]entry, error) {
	st, err := os.Stat(busybox)
	if err != nil {
		return nil, fmt.Errorf("testimage: busybox binary: %v: install busybox-static or pass its path: %w", err, errdefs.ErrNotFound)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("testimage: busybox %q is not a regular file: %w", busybox, errdefs.ErrInvalidArgument)
	}
	applets, err := listApplets(busybox)
	if err != nil {
		return nil, err
	}
	es := []entry{
		{path: "bin", mode: 0o755, dir: true},
		{path: "dev", mode: 0o755, dir: true},
		{path: "etc", mode: 0o755, dir: true},
		{path: "proc", mode: 0o555, dir: true},
		{path: "root", mode: 0o700, dir: true},
		{path: "sys", mode: 0o555, dir: true},
		{path: "tmp", mode: 0o777 | os.ModeSticky, dir: true},
		{path: "usr", mode: 0o755, dir: true},
		{path: "var", mode: 0o755, dir: true},
		{path: "bin/busybox", mode: 0o755, source: busybox, size: st.Size()},
		{path: "etc/group", mode: 0o644, data: []byte(group)},
		{path: "etc/passwd", mode: 0o644, data: []byte(passwd)},
	}
	for _, a := range applets {
		es = append(es, entry{path: "bin/" + a, mode: 0o777, link: "busybox"})
	}
	return es, nil
}

// listApplets runs busybox --list: the applet names, sorted, without
// busybox itself.
func listApplets(busybox string) ([]string, error) {
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("testimage: %s --list: %v: is it a busybox binary?: %w", busybox, err, errdefs.ErrInvalidArgument)
	}
	seen := map[string]bool{"busybox": true}
	var as []string
	for _, a := range strings.Fields(string(out)) {
		if seen[a] || strings.ContainsAny(a, "/.") {
			continue
		}
		seen[a] = true
		as = append(as, a)
	}
	if !seen["sh"] {
		return nil, fmt.Errorf("testimage: %s has no sh applet: use a full busybox build such as busybox-static: %w", busybox, errdefs.ErrInvalidArgument)
	}
	sort.Strings(as)
	return as, nil
}

// BuildRootfs makes dir a busybox root filesystem: bin/busybox with a
// symlink per applet (bin/sh among them), etc/passwd (root, nobody),
// etc/group, tmp (1777) and empty proc, sys, dev and root directories.
// Existing entries of the same names are replaced.
func BuildRootfs(dir, busybox string) error {
	es, err := entries(busybox)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("testimage: create rootfs dir: %w", err)
	}
	for _, e := range es {
		p := filepath.Join(dir, filepath.FromSlash(e.path))
		if e.dir {
			if st, err := os.Lstat(p); err == nil && !st.IsDir() {
				if err := os.Remove(p); err != nil {
					return fmt.Errorf("testimage: %w", err)
				}
			}
			if err := os.MkdirAll(p, 0o755); err != nil {
				return fmt.Errorf("testimage: %w", err)
			}
			if err := os.Chmod(p, e.mode); err != nil { // umask-proof
				return fmt.Errorf("testimage: %w", err)
			}
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("testimage: %w", err)
		}
		switch {
		case e.link != "":
			err = os.Symlink(e.link, p)
		default:
			err = writeFile(p, e)
		}
		if err != nil {
			return fmt.Errorf("testimage: %w", err)
		}
	}
	return nil
}

func writeFile(p string, e entry) (retErr error) {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, e.mode)
	if err != nil {
		return err
	}
	defer func() {
		if err := f.Close(); err != nil && retErr == nil {
			retErr = err
		}
	}()
	if err := copyContent(f, e); err != nil {
		return err
	}
	return f.Chmod(e.mode)
}

func copyContent(w io.Writer, e entry) error {
	if e.source == "" {
		_, err := w.Write(e.data)
		return err
	}
	src, err := os.Open(e.source)
	if err != nil {
		return err
	}
	defer src.Close()
	n, err := io.Copy(w, src)
	if err == nil && n != e.size {
		err = fmt.Errorf("%s changed size while copying (%d, want %d)", e.source, n, e.size)
	}
	return err
}

// writeLayer writes the rootfs as an uncompressed tar.
func writeLayer(w io.Writer, es []entry) error {
	tw := tar.NewWriter(w)
	for _, e := range es {
		h := &tar.Header{
			Name:    e.path,
			Mode:    int64(e.mode.Perm()),
			ModTime: epoch,
			Format:  tar.FormatPAX,
			Uid:     e.uid,
			Gid:     e.gid,
		}
		if e.mode&os.ModeSticky != 0 {
			h.Mode |= 0o1000
		}
		switch {
		case e.dir:
			h.Typeflag, h.Name = tar.TypeDir, e.path+"/"
		case e.link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.link
		default:
			h.Typeflag = tar.TypeReg
			h.Size = e.size
			if e.source == "" {
				h.Size = int64(len(e.data))
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			if err := copyContent(tw, e); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// blob is content with its descriptor.
type blob struct {
	desc ocispec.Descriptor
	data []byte
}

func newBlob(mediaType string, data []byte) blob {
	return blob{
		desc: ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))},
		data: data,
	}
}

func jsonBlob(mediaType string, v any) (blob, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return blob{}, err
	}
	return newBlob(mediaType, data), nil
}

// WriteOCIArchive writes the busybox image as an OCI image-layout tar to w:
// oci-layout, index.json and blobs/sha256/ holding the config, the manifest
// and one gzip layer of the BuildRootfs tree. The manifest descriptor in
// index.json is annotated with org.opencontainers.image.ref.name "latest"
// and io.containerd.image.name ref, which containerd's import names the
// image by.
func WriteOCIArchive(w io.Writer, busybox, ref string) error {
	if ref == "" {
		return fmt.Errorf("testimage: empty image reference: give one such as %q: %w", DefaultRef, errdefs.ErrInvalidArgument)
	}
	es, err := entries(busybox)
	if err != nil {
		return err
	}
	return writeImage(w, ref, [][]entry{es}, ocispec.ImageConfig{
		Env: []string{"PATH=" + DefaultPath},
		Cmd: []string{"sh"},
	}, "tend testimage from "+filepath.Base(busybox))
}

// writeImage writes an OCI image-layout tar of one gzip layer per entry
// list, in order, with config cfg.
func writeImage(w io.Writer, ref string, layerEntries [][]entry, cfg ocispec.ImageConfig, createdBy string) error {
	var layers []blob
	var diffIDs []digest.Digest
	var history []ocispec.History
	for _, es := range layerEntries {
		var layerTar bytes.Buffer
		if err := writeLayer(&layerTar, es); err != nil {
			return fmt.Errorf("testimage: build layer: %w", err)
		}
		diffIDs = append(diffIDs, digest.FromBytes(layerTar.Bytes()))
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		if _, err := zw.Write(layerTar.Bytes()); err != nil {
			return fmt.Errorf("testimage: compress layer: %w", err)
		}
		if err := zw.Close(); err != nil {
			return fmt.Errorf("testimage: compress layer: %w", err)
		}
		layers = append(layers, newBlob(ocispec.MediaTypeImageLayerGzip, gz.Bytes()))
		history = append(history, ocispec.History{Created: &epoch, CreatedBy: createdBy})
	}
	var layerDescs []ocispec.Descriptor
	for _, l := range layers {
		layerDescs = append(layerDescs, l.desc)
	}
	platform := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	config, err := jsonBlob(ocispec.MediaTypeImageConfig, ocispec.Image{
		Created:  &epoch,
		Platform: platform,
		Config:   cfg,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
		History:  history,
	})
	if err != nil {
		return fmt.Errorf("testimage: image config: %w", err)
	}
	manifest, err := jsonBlob(ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    config.desc,
		Layers:    layerDescs,
	})
	if err != nil {
		return fmt.Errorf("testimage: image manifest: %w", err)
	}
	mdesc := manifest.desc
	mdesc.Platform = &platform
	mdesc.Annotations = map[string]string{
		ocispec.AnnotationRefName:  "latest",
		"io.containerd.image.name": ref,
	}
	index, err := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{mdesc},
	})
	if err != nil {
		return fmt.Errorf("testimage: image index: %w", err)
	}
	layout, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return fmt.Errorf("testimage: oci-layout: %w", err)
	}

	tw := tar.NewWriter(w)
	dir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: epoch})
	}
	file := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: epoch}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	err = file(ocispec.ImageLayoutFile, layout)
	if err == nil {
		err = file(ocispec.ImageIndexFile, index)
	}
	if err == nil {
		err = dir("blobs/")
	}
	if err == nil {
		err = dir("blobs/sha256/")
	}
	for _, b := range append([]blob{config, manifest}, layers...) {
		if err == nil {
			err = file("blobs/sha256/"+b.desc.Digest.Encoded(), b.data)
		}
	}
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		return fmt.Errorf("testimage: write archive: %w", err)
	}
	return nil
}

// WriteOCIArchiveFile writes the archive to path (0600) atomically: to a
// temporary file in the same directory, renamed into place.
func WriteOCIArchiveFile(path, busybox, ref string) (retErr error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".busybox-*.tar")
	if err != nil {
		return fmt.Errorf("testimage: %w", err)
	}
	defer func() {
		if retErr != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := WriteOCIArchive(f, busybox, ref); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("testimage: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("testimage: %w", err)
	}
	return nil
}
