// Package storetest is the conformance suite every store.Store must pass.
// Each implementation's test calls Run with a constructor for fresh, empty
// stores, so the memory store and PostgreSQL are held to the same contract.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"microk8s-platform/service/store"
)

// Run runs the suite; newStore returns an empty store each time it is called.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	ctx := context.Background()

	t.Run("EmptyListIsEmptyNotNil", func(t *testing.T) {
		s := newStore(t)
		got, err := s.List(ctx, "nothing-here")
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if got == nil || len(got) != 0 {
			t.Fatalf("List of unknown id = %#v, want empty non-nil slice", got)
		}
	})

	t.Run("InsertionOrderPerContentID", func(t *testing.T) {
		s := newStore(t)
		want := map[string][]store.Comment{}
		for i := range 20 {
			id := fmt.Sprint(i % 3)
			c := store.Comment{Email: fmt.Sprintf("u%d@example.com", i), Comment: fmt.Sprintf("comment %d", i)}
			if err := s.Add(ctx, id, c); err != nil {
				t.Fatalf("Add: %v", err)
			}
			want[id] = append(want[id], c)
		}
		for id, w := range want {
			got, err := s.List(ctx, id)
			if err != nil {
				t.Fatalf("List(%s): %v", id, err)
			}
			if !reflect.DeepEqual(got, w) {
				t.Fatalf("List(%s) = %v, want %v", id, got, w)
			}
		}
	})

	t.Run("ContentIDsAreExactStrings", func(t *testing.T) {
		s := newStore(t)
		mustAdd(t, s, "1", store.Comment{Email: "a@example.com", Comment: "one"})
		for _, other := range []string{"01", "1.0", " 1", "1 "} {
			got, err := s.List(ctx, other)
			if err != nil || len(got) != 0 {
				t.Fatalf("List(%q) = %v, %v; want nothing (ids are compared as strings)", other, got, err)
			}
		}
	})

	t.Run("UnicodeAndQuotesRoundTrip", func(t *testing.T) {
		s := newStore(t)
		c := store.Comment{Email: "zoë@example.com", Comment: "olá, 'mundo' \"aspas\" ; DROP TABLE comments; -- 🚀\n\ttab"}
		mustAdd(t, s, "ünïcode/ish", c)
		got, err := s.List(ctx, "ünïcode/ish")
		if err != nil || len(got) != 1 || got[0] != c {
			t.Fatalf("List = %v, %v; want [%v]", got, err, c)
		}
	})

	// Everything the API lets through must be kept exactly by every store.
	// The API refuses NUL and invalid UTF-8 (PostgreSQL cannot store the
	// first and would refuse the second); every other character, control
	// characters included, must round-trip, so the stores agree.
	t.Run("AllButNULRoundTrips", func(t *testing.T) {
		s := newStore(t)
		var b strings.Builder
		for r := rune(1); r < 0x20; r++ {
			b.WriteRune(r)
		}
		b.WriteString("\u007f\u0085\u2028\u2029\ufeff\ufffd\U0010ffff")
		c := store.Comment{Email: "ctl@example.com", Comment: b.String()}
		mustAdd(t, s, "ctl", c)
		got, err := s.List(ctx, "ctl")
		if err != nil || len(got) != 1 || got[0] != c {
			t.Fatalf("List = %q, %v; want [%q]", got, err, c)
		}
	})

	t.Run("ListReturnsACopy", func(t *testing.T) {
		s := newStore(t)
		mustAdd(t, s, "c", store.Comment{Email: "a@example.com", Comment: "x"})
		got, _ := s.List(ctx, "c")
		got[0].Comment = "mutated"
		again, _ := s.List(ctx, "c")
		if again[0].Comment != "x" {
			t.Fatalf("mutating a List result changed the store: %v", again)
		}
	})

	t.Run("ConcurrentAddsAllLand", func(t *testing.T) {
		s := newStore(t)
		const writers, each = 8, 25
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					errs <- s.Add(ctx, "busy", store.Comment{Email: "w@example.com", Comment: fmt.Sprintf("%d-%d", w, i)})
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("concurrent Add: %v", err)
			}
		}
		got, err := s.List(ctx, "busy")
		if err != nil || len(got) != writers*each {
			t.Fatalf("List after concurrent adds: %d comments, %v; want %d", len(got), err, writers*each)
		}
		// Each writer's own comments keep their relative order.
		last := map[string]int{}
		for _, c := range got {
			var w, i int
			fmt.Sscanf(c.Comment, "%d-%d", &w, &i)
			key := fmt.Sprint(w)
			if prev, ok := last[key]; ok && i <= prev {
				t.Fatalf("writer %d's comments out of order: %d after %d", w, i, prev)
			}
			last[key] = i
		}
	})

	t.Run("CancelledContextFails", func(t *testing.T) {
		s := newStore(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.Add(cctx, "x", store.Comment{Email: "a@example.com", Comment: "x"}); err == nil {
			t.Fatal("Add with a cancelled context succeeded")
		}
		if _, err := s.List(cctx, "x"); err == nil {
			t.Fatal("List with a cancelled context succeeded")
		}
	})

	t.Run("PingThenCloseThenErrClosed", func(t *testing.T) {
		s := newStore(t)
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("Ping on an open store: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := s.Ping(ctx); err == nil {
			t.Fatal("Ping after Close succeeded")
		}
		if err := s.Add(ctx, "x", store.Comment{Email: "a@example.com", Comment: "x"}); !errors.Is(err, store.ErrClosed) {
			t.Fatalf("Add after Close = %v, want ErrClosed", err)
		}
		if _, err := s.List(ctx, "x"); !errors.Is(err, store.ErrClosed) {
			t.Fatalf("List after Close = %v, want ErrClosed", err)
		}
	})
}

func mustAdd(t *testing.T, s store.Store, id string, c store.Comment) {
	t.Helper()
	if err := s.Add(context.Background(), id, c); err != nil {
		t.Fatalf("Add(%q): %v", id, err)
	}
}
