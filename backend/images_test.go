package backend

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/containerd/errdefs"
)

func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestClassifyImportError feeds containerd's own importer archives that
// are not images, so that the classification follows its real errors.
func TestClassifyImportError(t *testing.T) {
	store, err := local.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	file := tarOf(t, map[string]string{"hello.txt": "not an image"})
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"garbage", bytes.Repeat([]byte("garbage!"), 200)},
		{"truncated", file[:700]},
		{"plain tar", file},
		{"layout without index", tarOf(t, map[string]string{"oci-layout": `{"imageLayoutVersion":"1.0.0"}`})},
		{"other layout version", tarOf(t, map[string]string{"oci-layout": `{"imageLayoutVersion":"9"}`})},
		{"broken manifest", tarOf(t, map[string]string{"manifest.json": `[{"Config":`})},
	} {
		_, err := archive.ImportIndex(context.Background(), store, bytes.NewReader(tc.in))
		if err == nil {
			t.Errorf("%s: the importer took it", tc.name)
			continue
		}
		if got := classifyImportError(err); !errdefs.IsInvalidArgument(got) || !errors.Is(got, err) {
			t.Errorf("%s: %v, want invalid argument wrapping the importer's error", tc.name, got)
		}
	}
	other := errors.New("content store unavailable")
	if got := classifyImportError(other); got != other {
		t.Errorf("a containerd failure became %v", got)
	}
}
