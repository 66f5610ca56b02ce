package testimage

import (
	"bytes"
	"compress/gzip"
	"io"
	"testing"

	"github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestNewRandomImage(t *testing.T) {
	img, err := NewRandomImage(3, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Layers) != 3 || len(img.Blobs) != 5 {
		t.Fatalf("%d layers, %d blobs; want 3 and 5", len(img.Layers), len(img.Blobs))
	}
	for d, b := range img.Blobs {
		if digest.FromBytes(b) != d {
			t.Errorf("blob %s has another digest", d)
		}
	}
	var m ocispec.Manifest
	mustJSON(t, img.Blobs[img.Manifest.Digest], &m)
	var cfg ocispec.Image
	mustJSON(t, img.Blobs[m.Config.Digest], &cfg)
	if len(m.Layers) != 3 || len(cfg.RootFS.DiffIDs) != 3 {
		t.Fatalf("manifest %+v, config rootfs %+v", m, cfg.RootFS)
	}
	seen := map[digest.Digest]bool{}
	for i, l := range m.Layers {
		zr, err := gzip.NewReader(bytes.NewReader(img.Blobs[l.Digest]))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(zr)
		if digest.FromBytes(raw) != cfg.RootFS.DiffIDs[i] {
			t.Errorf("layer %d: diff id mismatch", i)
		}
		// Incompressible: the gzip blob is not smaller than the data.
		if l.Size < 64<<10 || seen[l.Digest] {
			t.Errorf("layer %d: %d bytes (or a repeat): want random data of 64 KiB", i, l.Size)
		}
		seen[l.Digest] = true
	}
	if img.Size() < 3*64<<10 {
		t.Errorf("Size %d", img.Size())
	}
	if _, err := NewRandomImage(0, 1); !errdefs.IsInvalidArgument(err) {
		t.Errorf("no layers: %v, want invalid argument", err)
	}
}
