package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fakeBusybox writes a script that answers --list like busybox, so the
// tests need neither root nor busybox.
func fakeBusybox(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "busybox")
	script := "#!/bin/sh\nif [ \"$1\" = --list ]; then printf 'sh\\necho\\nls\\nbusybox\\ncat\\n'; fi\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func readTar(t *testing.T, r io.Reader) (map[string][]byte, map[string]*tar.Header) {
	t.Helper()
	files := map[string][]byte{}
	hdrs := map[string]*tar.Header{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, hdrs
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name], hdrs[h.Name] = b, h
	}
}

func TestWriteOCIArchive(t *testing.T) {
	bb := fakeBusybox(t)
	var buf bytes.Buffer
	if err := WriteOCIArchive(&buf, bb, DefaultRef); err != nil {
		t.Fatal(err)
	}
	files, _ := readTar(t, bytes.NewReader(buf.Bytes()))

	var layout ocispec.ImageLayout
	mustJSON(t, files["oci-layout"], &layout)
	if layout.Version != ocispec.ImageLayoutVersion {
		t.Errorf("oci-layout version %q", layout.Version)
	}
	blobOf := func(d ocispec.Descriptor) []byte {
		t.Helper()
		b, ok := files["blobs/sha256/"+d.Digest.Encoded()]
		if !ok {
			t.Fatalf("blob %s missing", d.Digest)
		}
		if digest.FromBytes(b) != d.Digest || int64(len(b)) != d.Size {
			t.Fatalf("blob %s: content digest %s size %d, descriptor size %d", d.Digest, digest.FromBytes(b), len(b), d.Size)
		}
		return b
	}
	for name, b := range files {
		if d, ok := bytes.CutPrefix([]byte(name), []byte("blobs/sha256/")); ok && len(d) > 0 {
			if got := digest.FromBytes(b).Encoded(); got != string(d) {
				t.Errorf("blob %s has digest %s", name, got)
			}
		}
	}

	var index ocispec.Index
	mustJSON(t, files["index.json"], &index)
	if index.SchemaVersion != 2 || len(index.Manifests) != 1 {
		t.Fatalf("index: %+v", index)
	}
	md := index.Manifests[0]
	if md.MediaType != ocispec.MediaTypeImageManifest {
		t.Errorf("manifest media type %q", md.MediaType)
	}
	if md.Annotations[ocispec.AnnotationRefName] != "latest" || md.Annotations["io.containerd.image.name"] != DefaultRef {
		t.Errorf("manifest annotations %v", md.Annotations)
	}
	var manifest ocispec.Manifest
	mustJSON(t, blobOf(md), &manifest)
	if len(manifest.Layers) != 1 || manifest.Layers[0].MediaType != ocispec.MediaTypeImageLayerGzip {
		t.Fatalf("manifest layers %+v", manifest.Layers)
	}
	var config ocispec.Image
	mustJSON(t, blobOf(manifest.Config), &config)
	if config.OS != "linux" || config.Architecture != runtime.GOARCH {
		t.Errorf("config platform %s/%s", config.OS, config.Architecture)
	}
	if len(config.Config.Cmd) != 1 || config.Config.Cmd[0] != "sh" || len(config.Config.Env) != 1 || config.Config.Env[0] != "PATH="+DefaultPath {
		t.Errorf("config %+v", config.Config)
	}

	zr, err := gzip.NewReader(bytes.NewReader(blobOf(manifest.Layers[0])))
	if err != nil {
		t.Fatal(err)
	}
	layer, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if len(config.RootFS.DiffIDs) != 1 || config.RootFS.DiffIDs[0] != digest.FromBytes(layer) {
		t.Fatalf("diff_ids %v, layer digest %s", config.RootFS.DiffIDs, digest.FromBytes(layer))
	}
	lfiles, lhdrs := readTar(t, bytes.NewReader(layer))
	want, _ := os.ReadFile(bb)
	if !bytes.Equal(lfiles["bin/busybox"], want) {
		t.Error("bin/busybox differs from the busybox binary")
	}
	for _, a := range []string{"bin/sh", "bin/echo", "bin/ls", "bin/cat"} {
		if h := lhdrs[a]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" {
			t.Errorf("%s: %+v, want symlink to busybox", a, h)
		}
	}
	if h := lhdrs["tmp/"]; h == nil || h.Mode != 0o1777 {
		t.Errorf("tmp/: %+v, want mode 1777", h)
	}
	if !bytes.Contains(lfiles["etc/passwd"], []byte("nobody:x:65534")) || len(lfiles["etc/group"]) == 0 {
		t.Error("etc/passwd or etc/group incomplete")
	}

	// Reproducible.
	var again bytes.Buffer
	if err := WriteOCIArchive(&again, bb, DefaultRef); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("two archives of the same binary differ")
	}
}

func TestBuildRootfs(t *testing.T) {
	bb := fakeBusybox(t)
	dir := filepath.Join(t.TempDir(), "rootfs")
	for range 2 { // a second build replaces the first
		if err := BuildRootfs(dir, bb); err != nil {
			t.Fatal(err)
		}
	}
	if target, err := os.Readlink(filepath.Join(dir, "bin/sh")); err != nil || target != "busybox" {
		t.Errorf("bin/sh -> %q, %v", target, err)
	}
	st, err := os.Stat(filepath.Join(dir, "tmp"))
	if err != nil || st.Mode()&os.ModeSticky == 0 || st.Mode().Perm() != 0o777 {
		t.Errorf("tmp: %v %v", st.Mode(), err)
	}
	for _, d := range []string{"proc", "sys", "dev", "root", "etc"} {
		if st, err := os.Stat(filepath.Join(dir, d)); err != nil || !st.IsDir() {
			t.Errorf("%s: %v", d, err)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "bin/busybox")); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("bin/busybox: %v", err)
	}
}

func TestErrors(t *testing.T) {
	if err := WriteOCIArchive(io.Discard, "/nonexistent/busybox", DefaultRef); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing busybox: %v", err)
	}
	if err := WriteOCIArchive(io.Discard, fakeBusybox(t), ""); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("empty ref: %v", err)
	}
	notBusybox := filepath.Join(t.TempDir(), "true")
	os.WriteFile(notBusybox, []byte("#!/bin/sh\nexit 0\n"), 0o755)
	if err := BuildRootfs(t.TempDir(), notBusybox); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("binary without sh applet: %v", err)
	}
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v in %q", err, b)
	}
}
