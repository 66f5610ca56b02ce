package backend

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
)

// ProgressFunc receives progress events; it is called from one goroutine
// at a time and must not block for long.
type ProgressFunc func(ProgressEvent)

// PullOptions configure PullImage.
type PullOptions struct {
	// Platform is the platform to pull ("linux/amd64"); empty: the host's.
	Platform string
	// Credentials for the registry; nil: anonymous.
	Credentials Credentials
}

// pullLeaseExpiry bounds how long the content of a pull that the engine
// did not finish (killed mid-pull) is kept from containerd's GC.
const pullLeaseExpiry = time.Hour

// pullGroup runs one pull per reference at a time: a second PullImage of
// a reference being pulled joins the first, sharing its download and its
// progress. Its zero value is ready.
type pullGroup struct {
	mu      sync.Mutex
	flights map[string]*pullFlight
}

// pullFlight is one pull in progress and the callers waiting for it. The
// pull runs on a goroutine of the engine with a context that ends when
// the last waiter leaves (or the engine closes).
type pullFlight struct {
	done   chan struct{}
	img    Image
	err    error
	cancel context.CancelFunc

	mu      sync.Mutex
	waiters int
	subs    map[int]ProgressFunc
	nextSub int
	last    map[string]ProgressEvent // the latest event per id, for a late joiner
	order   []string
}

func (f *pullFlight) publish(ev ProgressEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.last[ev.ID]; !ok {
		f.order = append(f.order, ev.ID)
	}
	f.last[ev.ID] = ev
	for _, fn := range f.subs {
		fn(ev)
	}
}

// subscribe sends progress to fn, replaying what the flight showed so
// far, for a waiter already counted; leave removes the waiter and cancels
// the pull when no one waits.
func (f *pullFlight) subscribe(fn ProgressFunc) (leave func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.nextSub
	f.nextSub++
	if fn != nil {
		for _, k := range f.order {
			fn(f.last[k])
		}
		f.subs[id] = fn
	}
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.subs, id)
		f.waiters--
		if f.waiters == 0 {
			f.cancel()
		}
	}
}

// PullImage pulls ref from its registry and unpacks it into the engine's
// snapshotter, reporting per-layer progress to progress (may be nil).
// Concurrent pulls of one reference share one download; the credentials
// of the first are used. Content is held by a lease while the pull runs:
// a cancelled pull leaves nothing that containerd's GC does not remove.
// Errors: errdefs.ErrUnauthenticated (log in), errdefs.ErrNotFound,
// errdefs.ErrUnavailable (registry unreachable).
func (e *Engine) PullImage(ctx context.Context, ref string, opts PullOptions, progress ProgressFunc) (Image, error) {
	ref, err := NormalizeImageRef(ref)
	if err != nil {
		return Image{}, err
	}
	platform := opts.Platform
	if platform != "" {
		p, err := platforms.Parse(platform)
		if err != nil {
			return Image{}, fmt.Errorf("invalid platform %q: %v: %w", platform, err, errdefs.ErrInvalidArgument)
		}
		platform = platforms.Format(p)
	}
	if e.isClosed() {
		return Image{}, ErrClosed
	}
	key := ref + "|" + platform
	e.pulls.mu.Lock()
	if e.pulls.flights == nil {
		e.pulls.flights = make(map[string]*pullFlight)
	}
	f, joined := e.pulls.flights[key]
	if !joined {
		f = &pullFlight{done: make(chan struct{}), subs: make(map[int]ProgressFunc), last: make(map[string]ProgressEvent)}
		var fctx context.Context
		fctx, f.cancel = context.WithCancel(e.ctx)
		e.pulls.flights[key] = f
		started := e.spawn(func() {
			defer func() {
				e.pulls.mu.Lock()
				delete(e.pulls.flights, key)
				e.pulls.mu.Unlock()
				f.cancel()
				close(f.done)
			}()
			f.img, f.err = e.pull(fctx, ref, platform, opts.Credentials, f.publish)
		})
		if !started {
			delete(e.pulls.flights, key)
			e.pulls.mu.Unlock()
			f.cancel()
			return Image{}, ErrClosed
		}
	}
	f.mu.Lock()
	f.waiters++
	f.mu.Unlock()
	e.pulls.mu.Unlock()
	leave := f.subscribe(progress)
	defer leave()
	select {
	case <-f.done:
		return f.img, f.err
	case <-ctx.Done():
		return Image{}, fmt.Errorf("pull %s: %w", ref, ctx.Err())
	}
}

// pull does one pull under its own lease.
func (e *Engine) pull(ctx context.Context, ref, platform string, creds Credentials, progress ProgressFunc) (_ Image, retErr error) {
	cc := e.imageClient()
	ctx = e.nsCtx(ctx)
	ctx, done, err := cc.WithLease(ctx, leases.WithRandomID(), leases.WithExpiration(pullLeaseExpiry))
	if err != nil {
		return Image{}, fmt.Errorf("pull %s: lease: %w", ref, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
		defer cancel()
		if err := done(dctx); err != nil {
			e.log.WithError(err).WithField("image", ref).Warn("release pull lease")
		}
	}()
	// What the reference names now, for "up to date": asked beside the
	// resolve; the tracker holds the handlers until it is known, so the
	// pull cannot have named its own image yet.
	var before *images.Image
	got := make(chan struct{})
	go func() {
		defer close(got)
		if img, err := cc.ImageService().Get(ctx, ref); err == nil {
			before = &img
		}
	}()

	tr := newPullTracker(cc, e.snapshotterName(), progress)
	tr.gate = got
	// As docker, "Pulling from" once the registry answered: an API client
	// gets a pull refused before any progress as an error status.
	if named, err := reference.ParseNormalizedNamed(ref); err == nil {
		tr.first = ProgressEvent{ID: tagOf(ref), Status: "Pulling from " + reference.Path(named)}
	}
	stop := tr.run(ctx)
	opts := []containerd.RemoteOpt{
		containerd.WithResolver(tr.resolver(e.resolver(ctx, creds))),
		containerd.WithPullUnpack,
		containerd.WithPullSnapshotter(e.snapshotterName()),
		containerd.WithImageHandlerWrapper(tr.wrap),
	}
	if platform != "" {
		opts = append(opts, containerd.WithPlatform(platform))
	}
	img, err := cc.Pull(ctx, ref, opts...)
	stop(err == nil)
	<-got
	if err != nil && ctx.Err() != nil {
		// Cancelled (Ctrl-C, every client gone): containerd records no
		// image; what was downloaded is held only by the lease released
		// below, for its GC.
		e.log.WithField("image", ref).Info("pull cancelled: no image recorded, its lease is released")
		return Image{}, fmt.Errorf("pull %s cancelled: %w", ref, ctx.Err())
	}
	if err != nil {
		return Image{}, fmt.Errorf("pull %s: %w", ref, classifyRegistryError(ref, err))
	}
	progress(ProgressEvent{Status: "Digest: " + img.Target().Digest.String()})
	if before != nil && before.Target.Digest == img.Target().Digest {
		progress(ProgressEvent{Status: "Status: Image is up to date for " + ref})
	} else {
		progress(ProgressEvent{Status: "Status: Downloaded newer image for " + ref})
	}
	// The size from the descriptors the pull handled: no content walk.
	md := img.Metadata()
	return Image{Ref: md.Name, Digest: md.Target.Digest.String(), Size: tr.size(), Created: md.CreatedAt}, nil
}

func (e *Engine) snapshotterName() string { return snapshotter }

// tagOf is the tag of a normalized reference ("latest"), or its digest.
func tagOf(ref string) string {
	if i := strings.LastIndex(ref, "@"); i >= 0 {
		return ref[i+1:]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[i+1:]
	}
	return "latest"
}
