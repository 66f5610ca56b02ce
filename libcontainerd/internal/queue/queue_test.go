package queue

import (
	"fmt"
	"sync"
	"testing"
)

func TestOrderPerKey(t *testing.T) {
	var q Queue
	const keys, per = 8, 200
	var mu sync.Mutex
	got := map[string][]int{}
	for i := 0; i < per; i++ {
		for k := 0; k < keys; k++ {
			key, i := fmt.Sprint("c", k), i
			if !q.Append(key, func() {
				mu.Lock()
				got[key] = append(got[key], i)
				mu.Unlock()
			}) {
				t.Fatal("Append refused before Close")
			}
		}
	}
	q.Close()
	for k := 0; k < keys; k++ {
		seq := got[fmt.Sprint("c", k)]
		if len(seq) != per {
			t.Fatalf("key c%d: ran %d functions, want %d", k, len(seq), per)
		}
		for i, v := range seq {
			if v != i {
				t.Fatalf("key c%d: position %d ran function %d: out of order", k, i, v)
			}
		}
	}
	if len(q.tails) != 0 {
		t.Fatalf("queue keeps %d idle keys, want 0", len(q.tails))
	}
}

func TestKeysRunConcurrently(t *testing.T) {
	var q Queue
	release := make(chan struct{})
	other := make(chan struct{})
	q.Append("slow", func() { <-release })
	q.Append("fast", func() { close(other) })
	<-other // would hang if "fast" waited behind "slow"
	close(release)
	q.Close()
}

func TestCloseRejectsAndWaits(t *testing.T) {
	var q Queue
	ran := false
	q.Append("a", func() { ran = true })
	q.Close()
	if !ran {
		t.Fatal("Close returned before the appended function ran")
	}
	if q.Append("a", func() { t.Error("function ran after Close") }) {
		t.Fatal("Append accepted a function after Close")
	}
}
