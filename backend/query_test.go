package backend

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestListFiltersAndOrder(t *testing.T) {
	env := newFakeEnv(t)
	ctx := context.Background()
	a := env.create(CreateOptions{Name: "alpha", Labels: map[string]string{"tier": "web"}})
	env.clock.Advance(time.Second)
	b := env.create(CreateOptions{Name: "beta", Labels: map[string]string{"tier": "db"}})
	env.clock.Advance(time.Second)
	cc := env.create(CreateOptions{Name: "gamma"})
	if err := env.e.Start(ctx, "beta"); err != nil {
		t.Fatal(err)
	}
	env.expectStart(b.ID)
	for _, tc := range []struct {
		name string
		opts ListOptions
		want []string
	}{
		{"running only", ListOptions{}, []string{b.ID}},
		{"all newest first", ListOptions{All: true}, []string{cc.ID, b.ID, a.ID}},
		{"label key", ListOptions{All: true, Filters: map[string][]string{"label": {"tier"}}}, []string{b.ID, a.ID}},
		{"label value", ListOptions{All: true, Filters: map[string][]string{"label": {"tier=web"}}}, []string{a.ID}},
		{"status", ListOptions{Filters: map[string][]string{"status": {"created"}}}, []string{cc.ID, a.ID}},
		{"id prefix", ListOptions{All: true, Filters: map[string][]string{"id": {a.ID[:10]}}}, []string{a.ID}},
		{"name", ListOptions{All: true, Filters: map[string][]string{"name": {"amm"}}}, []string{cc.ID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := env.e.List(ctx, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, c := range got {
				ids = append(ids, c.ID)
			}
			if len(ids) != len(tc.want) {
				t.Fatalf("got %d containers, want %d", len(ids), len(tc.want))
			}
			for i := range ids {
				if ids[i] != tc.want[i] {
					t.Fatalf("order/content differs at %d", i)
				}
			}
		})
	}
}

// TestWaitConditions runs in a synctest bubble: synctest.Wait tells when
// the waiters have taken their snapshot and are blocked.
func TestWaitConditions(t *testing.T) { synctest.Test(t, testWaitConditions) }

func testWaitConditions(t *testing.T) {
	env := newFakeEnv(t)
	ctx := context.Background()
	c := env.create(CreateOptions{})
	if code, err := env.e.Wait(ctx, c.ID, WaitNotRunning); err != nil || code != 0 {
		t.Fatalf("not-running on created: %d %v", code, err)
	}
	if err := env.e.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	env.expectStart(c.ID)
	type res struct {
		code int
		err  error
	}
	next, removed, running := make(chan res, 1), make(chan res, 1), make(chan res, 1)
	go func() {
		code, err := env.e.Wait(ctx, c.ID, WaitNextExit)
		next <- res{code, err}
	}()
	go func() {
		code, err := env.e.Wait(ctx, c.ID, WaitRemoved)
		removed <- res{code, err}
	}()
	wctx, cancel := context.WithCancel(ctx)
	go func() {
		code, err := env.e.Wait(wctx, c.ID, WaitNotRunning)
		running <- res{code, err}
	}()
	synctest.Wait() // every waiter is registered and blocked
	cancel()
	if r := <-running; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("not-running returned while running: %+v", r)
	}
	env.fc.exit(c.ID, 5)
	if r := <-next; r.err != nil || r.code != 5 {
		t.Fatalf("next-exit: %+v", r)
	}
	synctest.Wait()
	select {
	case r := <-removed:
		t.Fatalf("removed returned early: %+v", r)
	default:
	}
	if err := env.e.Remove(ctx, c.ID, false); err != nil {
		t.Fatal(err)
	}
	if r := <-removed; r.err != nil || r.code != 5 {
		t.Fatalf("removed: %+v", r)
	}
}
