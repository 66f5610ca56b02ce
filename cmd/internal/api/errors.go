package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/containerd/errdefs"
)

// ErrorResponse is the body of every failed request.
type ErrorResponse struct {
	Message string `json:"message"`
	// Class names the errdefs class ("not found", "already exists", ...),
	// which the HTTP status alone cannot tell apart (409 is both
	// AlreadyExists and FailedPrecondition).
	Class string `json:"class,omitempty"`
}

// classes pairs each errdefs class with its HTTP status; the first match of
// errors.Is wins.
var classes = []struct {
	err    error
	status int
}{
	{errdefs.ErrNotFound, http.StatusNotFound},
	{errdefs.ErrAlreadyExists, http.StatusConflict},
	{errdefs.ErrFailedPrecondition, http.StatusConflict},
	{errdefs.ErrConflict, http.StatusConflict},
	{errdefs.ErrInvalidArgument, http.StatusBadRequest},
	{errdefs.ErrNotImplemented, http.StatusNotImplemented},
	{errdefs.ErrUnavailable, http.StatusServiceUnavailable},
	{errdefs.ErrPermissionDenied, http.StatusForbidden},
	{errdefs.ErrUnauthenticated, http.StatusUnauthorized},
	{context.Canceled, 499},
	{context.DeadlineExceeded, http.StatusGatewayTimeout},
	{errdefs.ErrResourceExhausted, http.StatusTooManyRequests},
}

// StatusOf returns the HTTP status and class name of err.
func StatusOf(err error) (int, string) {
	for _, c := range classes {
		if errors.Is(err, c.err) {
			return c.status, c.err.Error()
		}
	}
	return http.StatusInternalServerError, ""
}

// NewErrorResponse describes err for the wire. The message drops a trailing
// ": <class>" that %w wrapping appends, so users read "No such container: x"
// and not "No such container: x: not found".
func NewErrorResponse(err error) (int, ErrorResponse) {
	status, class := StatusOf(err)
	msg := err.Error()
	if class != "" {
		msg = strings.TrimSuffix(msg, ": "+class)
	}
	if len(msg) > MaxErrorMessage {
		msg = msg[:MaxErrorMessage] + "..."
	}
	return status, ErrorResponse{Message: msg, Class: class}
}

// RemoteError is an error reported by the daemon. Error returns the daemon's
// message; errors.Is matches its errdefs class.
type RemoteError struct {
	Status  int
	Message string
	class   error
}

func (e *RemoteError) Error() string { return e.Message }

// Unwrap returns the errdefs class of the error, or nil.
func (e *RemoteError) Unwrap() error { return e.class }

// ErrorFrom turns a status and an ErrorResponse back into an error of the
// same errdefs class.
func ErrorFrom(status int, resp ErrorResponse) error {
	e := &RemoteError{Status: status, Message: resp.Message}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	for _, c := range classes {
		if resp.Class != "" && resp.Class == c.err.Error() {
			e.class = c.err
			return e
		}
	}
	for _, c := range classes {
		if c.status == status {
			e.class = c.err
			break
		}
	}
	if e.class == nil && status >= 500 {
		e.class = errdefs.ErrUnknown
	}
	return e
}

// ClassError returns the errdefs error whose class name is class, or an
// error of no class.
func ClassError(class string) error {
	for _, c := range classes {
		if c.err.Error() == class {
			return c.err
		}
	}
	return errors.New(class)
}
