package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"fmt"
	"runtime"

	"github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// RandomImage is an image of layers of random, incompressible bytes, for
// pulls and pushes that must move every byte: containerd shares content
// between namespaces, so a pull of a known image downloads nothing.
type RandomImage struct {
	// Manifest describes the image manifest, the image's root.
	Manifest ocispec.Descriptor
	// Config describes the image config.
	Config ocispec.Descriptor
	// Layers describe the gzip layers, lowest first.
	Layers []ocispec.Descriptor
	// Blobs hold the content of every descriptor above by digest.
	Blobs map[digest.Digest][]byte
}

// NewRandomImage makes an image of n layers, each a tar of one file of
// size random bytes (data/layer-N), gzip-compressed at the fastest level
// (random bytes do not compress: each layer is about size bytes).
func NewRandomImage(n, size int) (*RandomImage, error) {
	if n < 1 || size < 0 {
		return nil, fmt.Errorf("testimage: random image of %d layers of %d bytes: want at least one layer and a size >= 0: %w", n, size, errdefs.ErrInvalidArgument)
	}
	img := &RandomImage{Blobs: make(map[digest.Digest][]byte)}
	add := func(b blob) ocispec.Descriptor {
		img.Blobs[b.desc.Digest] = b.data
		return b.desc
	}
	var diffIDs []digest.Digest
	var history []ocispec.History
	data := make([]byte, size)
	for i := 0; i < n; i++ {
		if _, err := rand.Read(data); err != nil {
			return nil, fmt.Errorf("testimage: random layer: %w", err)
		}
		var raw bytes.Buffer
		tw := tar.NewWriter(&raw)
		err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data/layer-%d", i), Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg, ModTime: epoch})
		if err == nil {
			_, err = tw.Write(data)
		}
		if err == nil {
			err = tw.Close()
		}
		if err != nil {
			return nil, fmt.Errorf("testimage: random layer: %w", err)
		}
		diffIDs = append(diffIDs, digest.FromBytes(raw.Bytes()))
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
		if _, err := zw.Write(raw.Bytes()); err != nil {
			return nil, fmt.Errorf("testimage: compress layer: %w", err)
		}
		if err := zw.Close(); err != nil {
			return nil, fmt.Errorf("testimage: compress layer: %w", err)
		}
		img.Layers = append(img.Layers, add(newBlob(ocispec.MediaTypeImageLayerGzip, gz.Bytes())))
		history = append(history, ocispec.History{Created: &epoch, CreatedBy: "tend testimage random layer"})
	}
	cfg, err := jsonBlob(ocispec.MediaTypeImageConfig, ocispec.Image{
		Created:  &epoch,
		Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
		History:  history,
	})
	if err != nil {
		return nil, fmt.Errorf("testimage: image config: %w", err)
	}
	img.Config = add(cfg)
	m, err := jsonBlob(ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    img.Config,
		Layers:    img.Layers,
	})
	if err != nil {
		return nil, fmt.Errorf("testimage: image manifest: %w", err)
	}
	img.Manifest = add(m)
	return img, nil
}

// Size is the bytes a pull of the image downloads.
func (img *RandomImage) Size() int64 {
	var n int64
	for _, b := range img.Blobs {
		n += int64(len(b))
	}
	return n
}
