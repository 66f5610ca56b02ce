package crashtest

import "testing"

func TestTakeClearsTheMark(t *testing.T) {
	a, b := new(int), new(int)
	Abandon(a)
	if Take(b) {
		t.Fatal("Take of an engine never marked: true, want false")
	}
	if !Take(a) {
		t.Fatal("Take of a marked engine: false, want true")
	}
	if Take(a) {
		t.Fatal("second Take of a marked engine: true, want false (the mark is for one Close)")
	}
}
