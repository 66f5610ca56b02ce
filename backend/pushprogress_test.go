package backend

import (
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestPushTracker(t *testing.T) {
	a := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("a"), Size: 100}
	b := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("b"), Size: 50}
	var got []ProgressEvent
	tr := newPushTracker([]ocispec.Descriptor{a, b}, func(ev ProgressEvent) { got = append(got, ev) })
	key := func(d ocispec.Descriptor) string { return "layer-" + d.Digest.String() }
	st := func(off, total int64) docker.Status {
		return docker.Status{Status: content.Status{Offset: off, Total: total}}
	}
	tr.SetStatus(key(a), st(0, 100))
	tr.SetStatus(key(a), st(40, 100))
	tr.SetStatus(key(a), st(60, 100)) // within progressInterval of the last: dropped
	tr.SetStatus(key(a), st(100, 100))
	tr.SetStatus(key(a), docker.Status{Committed: true, Status: content.Status{Offset: 100, Total: 100}})
	tr.SetStatus(key(b), docker.Status{Committed: true, PushStatus: docker.PushStatus{Exists: true}})
	tr.SetStatus("manifest-"+digest.FromString("m").String(), st(10, 20)) // not a layer
	tr.finish([]ocispec.Descriptor{a, b})

	want := []ProgressEvent{
		{ID: layerID(a.Digest), Status: "Pushing", Detail: &ProgressDetail{Current: 40, Total: 100}},
		{ID: layerID(a.Digest), Status: "Pushing", Detail: &ProgressDetail{Current: 100, Total: 100}},
		{ID: layerID(a.Digest), Status: "Pushed"},
		{ID: layerID(b.Digest), Status: "Layer already exists"},
	}
	if len(got) != len(want) {
		t.Fatalf("events %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Status != w.Status || (g.Detail == nil) != (w.Detail == nil) || (g.Detail != nil && *g.Detail != *w.Detail) {
			t.Errorf("event %d: %+v, want %+v", i, g, w)
		}
	}
	if s, err := tr.GetStatus(key(a)); err != nil || !s.Committed {
		t.Errorf("GetStatus after the push: %+v, %v; the tracker must keep the pusher's statuses", s, err)
	}
}
