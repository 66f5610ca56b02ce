package backend

import (
	"slices"
	"testing"

	"github.com/containerd/errdefs"
)

// TestCapabilities checks docker's --cap-add/--cap-drop arithmetic: the
// default set less the dropped plus the added; ALL added starts from every
// capability the engine holds, ALL dropped from none.
func TestCapabilities(t *testing.T) {
	all, err := allCapabilities()
	if err != nil {
		t.Fatal(err)
	}
	without := func(set []string, drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(set), func(c string) bool { return slices.Contains(drop, c) })
	}
	for _, tc := range []struct {
		name      string
		add, drop []string
		want      []string
	}{
		{"default", nil, nil, DefaultCapabilities},
		{"add by any spelling", []string{"net_admin", "CAP_SYS_PTRACE"}, nil, append(slices.Clone(DefaultCapabilities), "CAP_NET_ADMIN", "CAP_SYS_PTRACE")},
		{"drop", nil, []string{"NET_RAW", "cap_chown"}, without(DefaultCapabilities, "CAP_NET_RAW", "CAP_CHOWN")},
		{"drop ALL", nil, []string{"all"}, []string{}},
		{"drop ALL add one", []string{"CHOWN"}, []string{"ALL"}, []string{"CAP_CHOWN"}},
		{"add ALL", []string{"ALL"}, nil, all},
		{"add ALL drop one", []string{"ALL"}, []string{"SYS_ADMIN"}, without(all, "CAP_SYS_ADMIN")},
		{"add a default one", []string{"KILL"}, nil, DefaultCapabilities},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := capabilities(tc.add, tc.drop)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("--cap-add %q --cap-drop %q: %q, want %q", tc.add, tc.drop, got, tc.want)
			}
		})
	}
	for _, tc := range []struct{ add, drop []string }{{[]string{"CAP_NOPE"}, nil}, {nil, []string{"bogus"}}} {
		if _, err := capabilities(tc.add, tc.drop); !errdefs.IsInvalidArgument(err) {
			t.Errorf("--cap-add %q --cap-drop %q: %v, want invalid argument", tc.add, tc.drop, err)
		}
	}
}
