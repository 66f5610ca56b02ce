package api

import backendtypes "github.com/tendhq/tend/backend/types"

// The documents of the docker CLI's everyday commands.
type (
	// UpdateOptions is the body of POST /v1/containers/{ref}/update.
	UpdateOptions = backendtypes.UpdateOptions
	// ContainerPruneReport answers POST /v1/containers/prune.
	ContainerPruneReport = backendtypes.ContainerPruneReport
	// PathStat describes the path of GET /v1/containers/{ref}/archive.
	PathStat = backendtypes.PathStat
	// Change is one line of GET /v1/containers/{ref}/changes.
	Change = backendtypes.Change
	// Usage is a container's disk use.
	Usage = backendtypes.Usage
)

// ImageUsage is an image of GET /v1/system/df with the number of
// containers made from it.
type ImageUsage struct {
	Image
	Containers int `json:"containers"`
}

// DiskUsage is the body of GET /v1/system/df: images and containers with
// their sizes.
type DiskUsage struct {
	Images     []ImageUsage `json:"images"`
	Containers []*Container `json:"containers"`
}
