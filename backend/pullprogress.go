package backend

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/transfer"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// progressInterval is how often a pull's progress is reported.
const progressInterval = 100 * time.Millisecond

// layerState is where one layer of a pull is.
type layerState int

const (
	layerNew layerState = iota // not yet reported
	layerWaiting
	layerDownloading
	layerDownloaded
	layerDone
)

type trackedLayer struct {
	desc    ocispec.Descriptor
	state   layerState
	offset  int64
	chainID string // once the config is read

	// pos is where the download is in the blob, fetched that it reached
	// the end: set by the fetch goroutines, read by the poller.
	pos     atomic.Int64
	fetched atomic.Bool
}

// pullTracker reports the progress of one pull per layer, as docker does:
// the layers come from the manifests the pull's handlers see; bytes from
// the layer downloads, counted as the engine's fetcher reads them (no
// content store polling, which costs containerd the CPU the unpack
// needs); a layer is extracted once the snapshot of its chain exists,
// asked of the lowest layer not yet extracted only (containerd applies
// them in order).
type pullTracker struct {
	sn       string
	cc       *containerd.Client
	cs       content.Store
	progress ProgressFunc

	mu     sync.Mutex
	first  ProgressEvent // sent before the first manifest is handled
	began  bool
	gate   <-chan struct{} // non-nil: each handler returns once it is closed
	layers []*trackedLayer
	byDig  map[digest.Digest]*trackedLayer
	config *ocispec.Descriptor
	chains bool  // chainIDs are known
	meta   int64 // bytes of the indexes and manifests handled
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
		if t.gate != nil {
			select {
			case <-t.gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if err == nil && (images.IsManifestType(desc.MediaType) || images.IsIndexType(desc.MediaType)) {
			t.mu.Lock()
			t.meta += desc.Size
			t.mu.Unlock()
		}
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
				// Whether it is there already the poller asks: not here,
				// on the way of the layer downloads.
				l := &trackedLayer{desc: c, state: layerNew}
				t.layers = append(t.layers, l)
				t.byDig[c.Digest] = l
			case images.IsConfigType(c.MediaType):
				c := c
				t.config = &c
			}
		}
		return children, nil
	})
}

// resolver wraps r so that the layer downloads of the pull are counted.
func (t *pullTracker) resolver(r remotes.Resolver) remotes.Resolver {
	return &trackingResolver{Resolver: r, t: t}
}

type trackingResolver struct {
	remotes.Resolver
	t *pullTracker
}

// SetOptions passes the pull's download settings on, as the client gives
// them to a resolver that takes them.
func (r *trackingResolver) SetOptions(opts ...transfer.ImageResolverOption) {
	if ro, ok := r.Resolver.(remotes.ResolverWithOptions); ok {
		ro.SetOptions(opts...)
	}
}

func (r *trackingResolver) Fetcher(ctx context.Context, ref string) (remotes.Fetcher, error) {
	f, err := r.Resolver.Fetcher(ctx, ref)
	if err != nil {
		return nil, err
	}
	return &trackingFetcher{Fetcher: f, t: r.t}, nil
}

type trackingFetcher struct {
	remotes.Fetcher
	t *pullTracker
}

func (f *trackingFetcher) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	rc, err := f.Fetcher.Fetch(ctx, desc)
	if err != nil {
		return rc, err
	}
	f.t.mu.Lock()
	l := f.t.byDig[desc.Digest]
	f.t.mu.Unlock()
	if l == nil {
		return rc, nil
	}
	cr := &countingReader{rc: rc, l: l}
	if _, ok := rc.(io.Seeker); ok {
		// A download resumed from a partial one seeks past what is there.
		return &countingReadSeeker{cr}, nil
	}
	return cr, nil
}

// countingReader records how far a layer's download is.
type countingReader struct {
	rc io.ReadCloser
	l  *trackedLayer
}

func (r *countingReader) Read(b []byte) (int, error) {
	n, err := r.rc.Read(b)
	if p := r.l.pos.Add(int64(n)); p >= r.l.desc.Size || err == io.EOF {
		r.l.fetched.Store(true)
	}
	return n, err
}

func (r *countingReader) Close() error { return r.rc.Close() }

type countingReadSeeker struct{ *countingReader }

func (r *countingReadSeeker) Seek(offset int64, whence int) (int64, error) {
	p, err := r.rc.(io.Seeker).Seek(offset, whence)
	if err == nil {
		r.l.pos.Store(p)
	}
	return p, err
}

// size is the image's size as containerd's Image.Size counts it: the
// index and manifest, config and layers of the platform pulled.
func (t *pullTracker) size() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.meta
	if t.config != nil {
		n += t.config.Size
	}
	for _, l := range t.layers {
		n += l.desc.Size
	}
	return n
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
			if l.state == layerNew {
				t.progress(ProgressEvent{ID: layerID(l.desc.Digest), Status: "Pulling fs layer"})
			}
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
	if !t.chains && t.config != nil {
		if diffIDs, err := images.RootFS(ctx, t.cs, *t.config); err == nil && len(diffIDs) == len(t.layers) {
			for i, id := range identity.ChainIDs(diffIDs) {
				t.layers[i].chainID = id.String()
			}
			t.chains = true
		}
	}
	for _, l := range t.layers {
		id := layerID(l.desc.Digest)
		if l.state == layerNew {
			l.state = layerWaiting
			if l.pos.Load() == 0 {
				if _, err := t.cs.Info(ctx, l.desc.Digest); err == nil {
					l.state = layerDownloaded
					t.progress(ProgressEvent{ID: id, Status: "Already exists"})
					continue
				}
			}
			t.progress(ProgressEvent{ID: id, Status: "Pulling fs layer"})
		}
		if l.state != layerWaiting && l.state != layerDownloading {
			continue
		}
		if l.fetched.Load() {
			l.state = layerDownloaded
			t.progress(ProgressEvent{ID: id, Status: "Download complete"})
			// containerd's applier reports no bytes: no bar that never fills.
			t.progress(ProgressEvent{ID: id, Status: "Extracting"})
			continue
		}
		if pos := l.pos.Load(); pos > 0 && (pos != l.offset || l.state == layerWaiting) {
			l.state, l.offset = layerDownloading, pos
			t.progress(ProgressEvent{ID: id, Status: "Downloading", Detail: &ProgressDetail{Current: pos, Total: l.desc.Size}})
		}
	}
	// Extracted: containerd applies the layers in order, so only the
	// lowest one not yet done is asked about, while it is done.
	sn := t.cc.SnapshotService(t.sn)
	for _, l := range t.layers {
		if l.state == layerDone {
			continue
		}
		if l.state != layerDownloaded || l.chainID == "" {
			return
		}
		if _, err := sn.Stat(ctx, l.chainID); err != nil {
			return
		}
		l.state = layerDone
		t.progress(ProgressEvent{ID: layerID(l.desc.Digest), Status: "Pull complete"})
	}
}
