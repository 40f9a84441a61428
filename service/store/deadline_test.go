package store_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"microk8s-platform/service/store"
	"microk8s-platform/service/store/storetest"
)

// The wrapper is a Store like any other. (Around a type embedding the
// memory store: the memory store alone would be returned unwrapped.)
func TestDeadlineStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s := store.WithDeadline(struct{ *store.Memory }{store.NewMemory()}, time.Second)
		if _, ok := s.(struct{ *store.Memory }); ok {
			t.Fatal("the wrapper was not applied")
		}
		return s
	})
}

// The memory store cannot block, so it gets no deadline (a goroutine and a
// timer per call for nothing); a store embedding it may block, and does.
func TestDeadlineSkipsOnlyTheMemoryStoreItself(t *testing.T) {
	m := store.NewMemory()
	if s := store.WithDeadline(m, time.Second); s != store.Store(m) {
		t.Errorf("the memory store was wrapped: %T", s)
	}
	h := &hungStore{Memory: m}
	if s := store.WithDeadline(h, time.Second); s == store.Store(h) {
		t.Error("a store embedding *Memory was left without its deadline")
	}
}

// hungStore blocks every call until released, ignoring its context, as a
// connection to a frozen database can.
type hungStore struct {
	*store.Memory
	hung    atomic.Bool
	release chan struct{}
}

func (h *hungStore) wait() {
	if h.hung.Load() {
		<-h.release
	}
}

func (h *hungStore) Add(ctx context.Context, id string, c store.Comment) error {
	h.wait()
	return h.Memory.Add(context.Background(), id, c)
}

func (h *hungStore) List(ctx context.Context, id string) ([]store.Comment, error) {
	h.wait()
	return h.Memory.List(context.Background(), id)
}

func (h *hungStore) Ping(ctx context.Context) error { h.wait(); return nil }

func TestDeadlineAnswersForAHungStoreAndRecovers(t *testing.T) {
	h := &hungStore{Memory: store.NewMemory(), release: make(chan struct{})}
	s := store.WithDeadline(h, 50*time.Millisecond)
	ctx := context.Background()
	if err := s.Add(ctx, "1", store.Comment{Email: "a@example.com", Comment: "before"}); err != nil {
		t.Fatal(err)
	}
	h.hung.Store(true)
	for name, call := range map[string]func() error{
		"add":  func() error { return s.Add(ctx, "1", store.Comment{Email: "a@example.com", Comment: "during"}) },
		"list": func() error { _, err := s.List(ctx, "1"); return err },
		"ping": func() error { return s.Ping(ctx) },
	} {
		errc := make(chan error, 1)
		go func() { errc <- call() }()
		select {
		case err := <-errc:
			var te *store.TimeoutError
			if !errors.As(err, &te) || te.Op != name || !errors.Is(err, store.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s on a hung store = %v, want a *TimeoutError for %s", name, err, name)
			}
		case <-time.After(10 * time.Second): // a hang, not a slow machine
			t.Fatalf("%s on a hung store did not return", name)
		}
	}
	// The database comes back: the next calls work, nothing to reset.
	h.hung.Store(false)
	close(h.release)
	got, err := s.List(ctx, "1")
	if err != nil || len(got) < 1 || got[0].Comment != "before" {
		t.Fatalf("after recovery: %v, %v", got, err)
	}
}

func TestDeadlineKeepsTheCallersCancellation(t *testing.T) {
	h := &hungStore{Memory: store.NewMemory(), release: make(chan struct{})}
	defer close(h.release)
	h.hung.Store(true)
	s := store.WithDeadline(h, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	if err := s.Add(ctx, "1", store.Comment{Email: "a@example.com", Comment: "x"}); !errors.Is(err, context.Canceled) || errors.Is(err, store.ErrTimeout) {
		t.Fatalf("Add whose caller went away = %v, want context.Canceled", err)
	}
}
