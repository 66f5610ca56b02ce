package integration

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/tendhq/tend/internal/testimage"
)

// pushRandomImage uploads an image of nLayers layers of size random bytes
// each (testimage.NewRandomImage) straight to the registry at host (plain
// HTTP, no auth), through the registry API: its blobs exist nowhere else,
// so a pull downloads them.
func pushRandomImage(t testing.TB, host, repo, tag string, nLayers, size int) *testimage.RandomImage {
	t.Helper()
	img, err := testimage.NewRandomImage(nLayers, size)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range append([]ocispec.Descriptor{img.Config}, img.Layers...) {
		uploadBlob(t, host, repo, d.MediaType, img.Blobs[d.Digest])
	}
	req, _ := http.NewRequest(http.MethodPut, "http://"+host+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(img.Blobs[img.Manifest.Digest]))
	req.Header.Set("Content-Type", ocispec.MediaTypeImageManifest)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("put manifest: %s %s", resp.Status, body)
	}
	return img
}

func uploadBlob(t testing.TB, host, repo, mediaType string, b []byte) ocispec.Descriptor {
	t.Helper()
	d := digest.FromBytes(b)
	resp, err := http.Post("http://"+host+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start upload: %s", resp.Status)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if !loc.IsAbs() {
		loc = (&url.URL{Scheme: "http", Host: host}).ResolveReference(loc)
	}
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	req, _ := http.NewRequest(http.MethodPut, loc.String(), bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload blob: %s %s", resp.Status, body)
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}
}
