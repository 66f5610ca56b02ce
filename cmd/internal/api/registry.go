package api

import (
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/containerd/errdefs"

	backendtypes "github.com/tendhq/tend/backend/types"
)

// The documents of the registry and image-archive routes.
type (
	// ProgressEvent is one step of a pull, push or load.
	ProgressEvent = backendtypes.ProgressEvent
	// ProgressDetail counts a layer's bytes.
	ProgressDetail = backendtypes.ProgressDetail
	// ImageInspect is GET /images/{image}.
	ImageInspect = backendtypes.ImageInspect
	// PruneReport is POST /images/prune.
	PruneReport = backendtypes.PruneReport
)

// ProgressMessage is one JSON line of a pull, push or load stream, in the
// shape of docker's jsonmessage: a progress event, or the error that ended
// the stream (with its errdefs class).
type ProgressMessage struct {
	ProgressEvent
	Error       string       `json:"error,omitempty"`
	ErrorDetail *ErrorDetail `json:"errorDetail,omitempty"`
	Class       string       `json:"class,omitempty"`
}

// ErrorDetail is docker's errorDetail of a jsonmessage.
type ErrorDetail struct {
	Message string `json:"message"`
}

// RegistryAuthHeader carries a request's registry credentials, as docker's
// X-Registry-Auth: base64url of an AuthConfig.
const RegistryAuthHeader = "X-Registry-Auth"

// AuthConfig is a registry login (docker's registry.AuthConfig fields).
type AuthConfig struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	ServerAddress string `json:"serveraddress,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
}

// EncodeAuth encodes a for RegistryAuthHeader.
func EncodeAuth(a AuthConfig) string {
	b, _ := json.Marshal(a)
	return base64.URLEncoding.EncodeToString(b)
}

// DecodeAuth reads RegistryAuthHeader; "" is no credentials.
func DecodeAuth(v string) (AuthConfig, error) {
	var a AuthConfig
	if v == "" {
		return a, nil
	}
	b, err := base64.URLEncoding.DecodeString(v)
	if err != nil {
		if b, err = base64.StdEncoding.DecodeString(v); err != nil {
			return a, fmt.Errorf("invalid %s header: not base64: %w", RegistryAuthHeader, errdefs.ErrInvalidArgument)
		}
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("invalid %s header: %v: %w", RegistryAuthHeader, err, errdefs.ErrInvalidArgument)
	}
	return a, nil
}

// TagRequest is the body of POST /images/tag.
type TagRequest struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

// TagResponse answers POST /images/tag with the target's full reference.
type TagResponse struct {
	Ref string `json:"ref"`
}

// LoginResponse answers POST /auth.
type LoginResponse struct {
	Status string `json:"status"`
}
