package api

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
)

// MaxEcho is how many bytes of a user's input an error message repeats;
// longer input is cut and marked, so that an error never grows with what
// the client sent.
const MaxEcho = 64

// MaxErrorMessage bounds the message of an ErrorResponse.
const MaxErrorMessage = 4 << 10

// Echo quotes s for an error message, cut to MaxEcho bytes plus "...".
func Echo(s string) string {
	if len(s) > MaxEcho {
		return fmt.Sprintf("%q...", s[:MaxEcho])
	}
	return fmt.Sprintf("%q", s)
}

// Cut is s cut to MaxEcho bytes plus "...", for input shown unquoted.
func Cut(s string) string {
	if len(s) > MaxEcho {
		return s[:MaxEcho] + "..."
	}
	return s
}

// namePattern is what a container id, id prefix, name, checkpoint name or
// exec id looks like: it never starts with '.', so "." and ".." are not
// names, and it holds no '/'.
// Compiled on first use: most CLI commands never need it.
var namePattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`) })

// ValidateName reports, as errdefs.ErrInvalidArgument, a value of a
// container reference, checkpoint name or exec id (what says which) that
// no object can have. A leading '/' (docker's "/name") is not allowed here:
// callers that accept it trim it first.
func ValidateName(what, v string) error {
	if v == "" {
		return fmt.Errorf("empty %s: give a name or id: %w", what, errdefs.ErrInvalidArgument)
	}
	if !namePattern().MatchString(v) {
		return fmt.Errorf("invalid %s %s: want letters, digits, '_', '.' or '-', starting with a letter or digit, at most 128 characters: %w", what, Echo(v), errdefs.ErrInvalidArgument)
	}
	return nil
}

// maxImageRef bounds a reference: a name (255), a tag (128) and a digest.
const maxImageRef = 512

// ValidateImageRef reports an image reference that is not one.
func ValidateImageRef(v string) error {
	if v == "" {
		return fmt.Errorf("empty image reference: give one such as busybox or docker.io/library/busybox:latest: %w", errdefs.ErrInvalidArgument)
	}
	if len(v) > maxImageRef {
		return fmt.Errorf("invalid image reference %s: longer than %d characters: %w", Echo(v), maxImageRef, errdefs.ErrInvalidArgument)
	}
	if _, err := reference.ParseNormalizedNamed(v); err != nil {
		return fmt.Errorf("invalid image reference %s: %v: give NAME[:TAG] or NAME@DIGEST, lowercase, such as busybox or localhost:5000/team/app:1.0: %w", Echo(v), err, errdefs.ErrInvalidArgument)
	}
	return nil
}

// CheckPath reports an escaped request path that a router could read as
// another one: an empty segment (a double or trailing slash), a "." or ".."
// segment (also when percent-encoded) or an encoded slash or backslash.
// Such a path is refused, never cleaned: cleaning "/containers/C/checkpoints/.."
// gives "/containers/C", another object.
func CheckPath(escaped string) error {
	bad := func(why string) error {
		return fmt.Errorf("invalid request path %s: %s: %w", Echo(escaped), why, errdefs.ErrInvalidArgument)
	}
	if !strings.HasPrefix(escaped, "/") {
		return bad("want an absolute path")
	}
	for _, seg := range strings.Split(escaped[1:], "/") {
		if seg == "" {
			return bad("empty segment (double or trailing slash)")
		}
		low := strings.ToLower(seg)
		if strings.Contains(low, "%2f") || strings.Contains(low, "%5c") {
			return bad("encoded slash in a segment")
		}
		v, err := url.PathUnescape(seg)
		if err != nil {
			return bad("malformed percent-encoding")
		}
		if v == "." || v == ".." {
			return bad("'.' or '..' segment")
		}
	}
	return nil
}

// ImagePath is the escaped path of an image reference under /images/: its
// '/' stay separators, everything else is escaped segment by segment.
func ImagePath(ref string) string {
	segs := strings.Split(ref, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
