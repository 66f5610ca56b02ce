package backend

import (
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// pushTracker is the resolver's status tracker of a push: containerd's
// pusher sets a blob's status as it uploads (offset, total, committed,
// already there), and the tracker turns that into docker's per-layer
// events ("Pushing" with bytes, "Pushed", "Layer already exists"), at most
// one byte count per layer each progressInterval.
type pushTracker struct {
	docker.StatusTrackLocker
	progress ProgressFunc

	mu     sync.Mutex
	layers map[digest.Digest]*pushedLayer
}

type pushedLayer struct {
	done bool
	last time.Time // of the last byte count sent
}

var _ docker.StatusTrackLocker = (*pushTracker)(nil)

func newPushTracker(layers []ocispec.Descriptor, progress ProgressFunc) *pushTracker {
	t := &pushTracker{StatusTrackLocker: docker.NewInMemoryTracker(), progress: progress, layers: make(map[digest.Digest]*pushedLayer)}
	for _, l := range layers {
		t.layers[l.Digest] = &pushedLayer{}
	}
	return t
}

// SetStatus records st and reports the layer's progress.
func (t *pushTracker) SetStatus(ref string, st docker.Status) {
	t.StatusTrackLocker.SetStatus(ref, st)
	// The pusher's refs are remotes.MakeRefKey's: "layer-sha256:...".
	_, dgst, ok := strings.Cut(ref, "-")
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.layers[digest.Digest(dgst)]
	if l == nil || l.done {
		return
	}
	id := layerID(digest.Digest(dgst))
	switch {
	case st.Exists:
		l.done = true
		t.progress(ProgressEvent{ID: id, Status: "Layer already exists"})
	case st.Committed:
		l.done = true
		t.progress(ProgressEvent{ID: id, Status: "Pushed"})
	case st.Offset > 0 && (time.Since(l.last) >= progressInterval || st.Offset == st.Total):
		l.last = time.Now()
		t.progress(ProgressEvent{ID: id, Status: "Pushing", Detail: &ProgressDetail{Current: st.Offset, Total: st.Total}})
	}
}

// finish reports every layer the pusher did not report as pushed.
func (t *pushTracker) finish(layers []ocispec.Descriptor) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := len(layers) - 1; i >= 0; i-- {
		if l := t.layers[layers[i].Digest]; l != nil && !l.done {
			l.done = true
			t.progress(ProgressEvent{ID: layerID(layers[i].Digest), Status: "Pushed"})
		}
	}
}
