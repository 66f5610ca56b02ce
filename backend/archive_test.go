package backend

import (
	"reflect"
	"testing"
)

func TestWithChangedParents(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []Change
		want []Change
	}{
		{"none", nil, nil},
		{"top level", []Change{{Path: "/new", Kind: 1}}, []Change{{Path: "/new", Kind: 1}}},
		{"added under an unchanged dir",
			[]Change{{Path: "/etc/foo", Kind: 1}},
			[]Change{{Path: "/etc", Kind: 0}, {Path: "/etc/foo", Kind: 1}}},
		{"deep, once per dir",
			[]Change{{Path: "/a/b/c", Kind: 1}, {Path: "/a/b/d", Kind: 2}, {Path: "/a/e", Kind: 0}},
			[]Change{{Path: "/a", Kind: 0}, {Path: "/a/b", Kind: 0}, {Path: "/a/b/c", Kind: 1}, {Path: "/a/b/d", Kind: 2}, {Path: "/a/e", Kind: 0}}},
		{"an added dir is not also changed",
			[]Change{{Path: "/tmp", Kind: 0}, {Path: "/tmp/new", Kind: 1}, {Path: "/tmp/new/f", Kind: 1}},
			[]Change{{Path: "/tmp", Kind: 0}, {Path: "/tmp/new", Kind: 1}, {Path: "/tmp/new/f", Kind: 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := withChangedParents(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
