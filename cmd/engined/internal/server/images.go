package server

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/containerd/errdefs"
)

func (s *Server) images(w http.ResponseWriter, r *http.Request) error {
	imgs, err := s.engine.Images(r.Context())
	if err != nil {
		return err
	}
	writeList(w, imgs)
	return nil
}

// openArchive opens the image archive of an import or load request: it is
// streamed to the engine as it arrives, up to the import limit, each read
// within the body timeout; body.err, once set, says what the client did
// wrong with the body.
func (s *Server) openArchive(w http.ResponseWriter, r *http.Request) (archive io.Reader, body *progressReader, err error) {
	if r.ContentLength > s.opts.MaxImportBytes {
		return nil, nil, &http.MaxBytesError{Limit: s.opts.MaxImportBytes}
	}
	body = &progressReader{
		r:       http.MaxBytesReader(w, r.Body, s.opts.MaxImportBytes),
		rc:      http.NewResponseController(w),
		timeout: s.opts.BodyTimeout,
	}
	archive, err = sniffArchive(body)
	if err != nil {
		if body.err != nil {
			return nil, nil, body.err
		}
		return nil, nil, err
	}
	return archive, body, nil
}

func (s *Server) importImage(w http.ResponseWriter, r *http.Request) error {
	archive, body, err := s.openArchive(w, r)
	if err != nil {
		return err
	}
	imgs, err := s.engine.ImportImage(r.Context(), archive)
	if body.err != nil {
		// The engine's error wraps the body's with its own words, or
		// not at all: the body's says what the client did.
		return body.err
	}
	if err != nil && !errdefs.IsInvalidArgument(err) && (errors.Is(err, tar.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF)) {
		// The archive is broken or cut short: the client's to fix.
		return fmt.Errorf("%w: the image archive is not a complete tar: send the whole file of docker save or an OCI layout: %w", err, errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return err
	}
	writeList(w, imgs)
	return nil
}

func (s *Server) removeImage(w http.ResponseWriter, r *http.Request) error {
	if err := s.engine.RemoveImage(r.Context(), r.PathValue("image")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// sniffArchive refuses an image archive that is empty or does not start
// with a tar header, before the engine stores anything of it, and returns
// a reader of the whole archive.
func sniffArchive(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 1024)
	head, err := br.Peek(512)
	if len(head) == 0 {
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		return nil, fmt.Errorf("empty image archive: send the tar of docker save or of an OCI layout: %w", errdefs.ErrInvalidArgument)
	}
	if _, terr := tar.NewReader(bytes.NewReader(head)).Next(); terr != nil && !errors.Is(terr, io.EOF) {
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		return nil, fmt.Errorf("the image archive is not a tar (%v): send the tar of docker save or of an OCI layout: %w", terr, errdefs.ErrInvalidArgument)
	}
	return br, nil
}

// progressReader reads a request body whose every read must complete
// within timeout of the previous one: a slow client is cut off, a large
// body that keeps coming is not. It remembers a read error of its own
// (too large, too slow) so that the handler can report it whatever the
// consumer made of it.
type progressReader struct {
	r       io.Reader
	rc      *http.ResponseController
	timeout time.Duration
	ended   bool // the body ended (or failed): no more deadlines
	err     error
}

func (p *progressReader) Read(b []byte) (int, error) {
	if p.ended {
		// A deadline now would bound net/http's background read, which
		// starts at the body's end, and cancel the import as it unpacks.
		return p.r.Read(b)
	}
	_ = p.rc.SetReadDeadline(time.Now().Add(p.timeout))
	n, err := p.r.Read(b)
	if err != nil {
		p.ended = true
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || errors.Is(err, os.ErrDeadlineExceeded) {
		p.err = err
	}
	return n, err
}
