package api

import (
	"encoding/json"
	"reflect"
	"sort"
	"testing"
)

// TestWireNames: the documents that became aliases of backend's types keep
// the JSON names the CLI and earlier daemons read.
func TestWireNames(t *testing.T) {
	for _, tc := range []struct {
		doc  any
		want []string
	}{
		{TopProcess{}, []string{"command", "pid", "ppid", "user"}},
		{Image{}, []string{"created", "digest", "ref", "size"}},
		{Info{}, []string{"containerd_version", "containers", "images", "live_restore", "namespace", "paused", "root", "running", "stopped"}},
	} {
		b, err := json.Marshal(tc.doc)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		var got []string
		for k := range m {
			got = append(got, k)
		}
		sort.Strings(got)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%T on the wire: %v, want %v", tc.doc, got, tc.want)
		}
	}
}
