package backend

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestRenameRacesNoReader renames a container again and again while other
// goroutines read its name through every path that shows it (inspect, list,
// a refused exec, the in-use message of a volume): under -race, a reader
// without the record's lock fails the test.
func TestRenameRacesNoReader(t *testing.T) {
	env := newFakeEnv(t)
	ctx := context.Background()
	c := env.create(CreateOptions{Name: "r0"})
	const rounds = 200
	var wg sync.WaitGroup
	stop := make(chan struct{})
	readers := []func(){
		func() { _, _ = env.e.Inspect(ctx, c.ID) },
		func() { _, _ = env.e.List(ctx, ListOptions{All: true}) },
		func() { _, _ = env.e.Exec(ctx, c.ID, ExecOptions{Cmd: []string{"true"}}) },
		func() {
			if d := env.e.describeContainer(c.ID); !strings.Contains(d, shortID(c.ID)) {
				t.Errorf("describeContainer: %q", d)
			}
		},
	}
	for _, read := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					read()
				}
			}
		}()
	}
	for i := 1; i <= rounds; i++ {
		if err := env.e.Rename(ctx, c.ID, fmt.Sprintf("r%d", i)); err != nil {
			t.Fatalf("rename %d: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
	if got := env.inspect(c.ID).Name; got != fmt.Sprintf("r%d", rounds) {
		t.Errorf("name after %d renames: %q", rounds, got)
	}
}
