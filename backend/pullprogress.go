package backend

import (
	"context"
	"sync"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// progressInterval is how often a pull's progress is read from
// containerd's content store and snapshotter.
const progressInterval = 100 * time.Millisecond

// layerState is where one layer of a pull is.
type layerState int

const (
	layerWaiting layerState = iota
	layerDownloading
	layerDownloaded
	layerDone
)

type trackedLayer struct {
	desc    ocispec.Descriptor
	state   layerState
	offset  int64
	chainID string // once the config is read
}

// pullTracker reports the progress of one pull per layer, as docker does:
// the layers come from the manifests the pull's handlers see; bytes from
// containerd's active ingests; a layer is extracted once the snapshot of
// its chain exists. It polls: containerd publishes no per-byte events.
type pullTracker struct {
	cs       content.Store
	sn       string
	cc       *containerd.Client
	progress ProgressFunc

	mu     sync.Mutex
	first  ProgressEvent // sent before the first manifest is handled
	began  bool
	layers []*trackedLayer
	byDig  map[digest.Digest]*trackedLayer
	config *ocispec.Descriptor
	chains bool // chainIDs are known
}

func newPullTracker(cc *containerd.Client, sn string, progress ProgressFunc) *pullTracker {
	return &pullTracker{cs: cc.ContentStore(), sn: sn, cc: cc, progress: progress, byDig: make(map[digest.Digest]*trackedLayer)}
}

func layerID(d digest.Digest) string {
	h := d.Encoded()
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}

// wrap records the layers and config of each manifest the pull handles.
func (t *pullTracker) wrap(h images.Handler) images.Handler {
	return images.HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		t.mu.Lock()
		if !t.began {
			// The first handler call is the root the resolver found.
			t.began = true
			if t.first.Status != "" {
				t.progress(t.first)
			}
		}
		t.mu.Unlock()
		children, err := h.Handle(ctx, desc)
		if err != nil || !images.IsManifestType(desc.MediaType) {
			return children, err
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		for _, c := range children {
			switch {
			case images.IsLayerType(c.MediaType):
				if _, ok := t.byDig[c.Digest]; ok {
					continue
				}
				l := &trackedLayer{desc: c}
				t.layers = append(t.layers, l)
				t.byDig[c.Digest] = l
				if _, err := t.cs.Info(ctx, c.Digest); err == nil {
					l.state = layerDownloaded
					t.progress(ProgressEvent{ID: layerID(c.Digest), Status: "Already exists"})
				} else {
					t.progress(ProgressEvent{ID: layerID(c.Digest), Status: "Pulling fs layer"})
				}
			case images.IsConfigType(c.MediaType):
				c := c
				t.config = &c
			}
		}
		return children, nil
	})
}

// run polls until the returned stop is called; stop(true) reports every
// layer complete.
func (t *pullTracker) run(ctx context.Context) (stop func(ok bool)) {
	pctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(progressInterval)
		defer tick.Stop()
		for {
			select {
			case <-pctx.Done():
				return
			case <-tick.C:
				t.poll(pctx)
			}
		}
	}()
	return func(ok bool) {
		cancel()
		wg.Wait()
		if !ok {
			return
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		for _, l := range t.layers {
			if l.state != layerDone {
				if l.state < layerDownloaded {
					t.progress(ProgressEvent{ID: layerID(l.desc.Digest), Status: "Download complete"})
				}
				l.state = layerDone
				t.progress(ProgressEvent{ID: layerID(l.desc.Digest), Status: "Pull complete"})
			}
		}
	}
}

func (t *pullTracker) poll(ctx context.Context) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.layers) == 0 {
		return
	}
	statuses, err := t.cs.ListStatuses(ctx)
	if err != nil {
		return
	}
	active := make(map[string]content.Status, len(statuses))
	for _, s := range statuses {
		active[s.Ref] = s
	}
	if !t.chains && t.config != nil {
		if diffIDs, err := images.RootFS(ctx, t.cs, *t.config); err == nil && len(diffIDs) == len(t.layers) {
			for i, id := range identity.ChainIDs(diffIDs) {
				t.layers[i].chainID = id.String()
			}
			t.chains = true
		}
	}
	sn := t.cc.SnapshotService(t.sn)
	for _, l := range t.layers {
		id := layerID(l.desc.Digest)
		switch l.state {
		case layerWaiting, layerDownloading:
			if s, ok := active[remotes.MakeRefKey(ctx, l.desc)]; ok {
				if s.Offset != l.offset || l.state == layerWaiting {
					l.state, l.offset = layerDownloading, s.Offset
					total := s.Total
					if total == 0 {
						total = l.desc.Size
					}
					t.progress(ProgressEvent{ID: id, Status: "Downloading", Detail: &ProgressDetail{Current: s.Offset, Total: total}})
				}
				continue
			}
			if _, err := t.cs.Info(ctx, l.desc.Digest); err == nil {
				l.state = layerDownloaded
				t.progress(ProgressEvent{ID: id, Status: "Download complete"})
				// containerd's applier reports no bytes: no bar that never fills.
				t.progress(ProgressEvent{ID: id, Status: "Extracting"})
			}
		case layerDownloaded:
			if l.chainID == "" {
				continue
			}
			if _, err := sn.Stat(ctx, l.chainID); err == nil {
				l.state = layerDone
				t.progress(ProgressEvent{ID: id, Status: "Pull complete"})
			}
		}
	}
}
