package types

import (
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Image is an image in the engine's namespace.
type Image struct {
	Ref     string    `json:"ref"`
	Digest  string    `json:"digest"`
	Size    int64     `json:"size"`
	Created time.Time `json:"created"`
}

// ImageInspect is what `image inspect` shows of an image.
type ImageInspect struct {
	Image
	MediaType    string              `json:"mediaType"`
	Architecture string              `json:"architecture,omitempty"`
	Os           string              `json:"os,omitempty"`
	Config       ocispec.ImageConfig `json:"config"`
	Layers       []string            `json:"layers,omitempty"` // diff ids
	Labels       map[string]string   `json:"labels,omitempty"` // containerd's
}

// PruneReport says what PruneImages removed.
type PruneReport struct {
	Deleted        []string `json:"deleted"`
	SpaceReclaimed int64    `json:"spaceReclaimed"`
}

// ProgressEvent is one step of a pull, push or load, in the shape of
// docker's jsonmessage: ID is a layer's short digest (or the tag), Status
// says what happens to it ("Downloading", "Extracting", "Pull complete"),
// Detail counts bytes.
type ProgressEvent struct {
	ID     string          `json:"id,omitempty"`
	Status string          `json:"status,omitempty"`
	Detail *ProgressDetail `json:"progressDetail,omitempty"`
}

// ProgressDetail counts the bytes of one layer.
type ProgressDetail struct {
	Current int64 `json:"current"`
	Total   int64 `json:"total"`
}
