package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrTimeout is what a call through WithDeadline returns (wrapped in a
// *TimeoutError) when the store did not answer in time.
var ErrTimeout = errors.New("store: no answer in time")

// TimeoutError says which call ran out of time and what the limit was.
type TimeoutError struct {
	Op    string
	Limit time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("store: %s did not answer within %s", e.Op, e.Limit)
}

// Is makes errors.Is(err, ErrTimeout) and errors.Is(err,
// context.DeadlineExceeded) hold.
func (e *TimeoutError) Is(target error) bool {
	return target == ErrTimeout || target == context.DeadlineExceeded
}

// WithDeadline returns s with a server-side deadline on every Add, List and
// Ping: the call gets a context that ends after limit, and returns a
// *TimeoutError at the limit even if s does not honour its context (a
// connection to a frozen database can block in a read the context does not
// reach). The abandoned call finishes, or fails, in the background. A call
// whose caller went away first returns the caller's context error.
//
// This is what keeps a hung database from hanging requests: the client
// gets a 503 within the limit, and once the database answers again the
// next calls succeed with nothing to reset.
//
// The memory store itself is returned as it is: its calls hold a mutex for
// a map operation and wait on nothing else, so for it the deadline would be
// a goroutine, a timer and a channel per call spent on nothing. The check is
// on the exact type, not a method: a wrapper that embeds *Memory (a test's
// hanging store) may block, and keeps its deadline.
func WithDeadline(s Store, limit time.Duration) Store {
	if _, ok := s.(*Memory); ok {
		return s
	}
	return &deadline{s: s, limit: limit}
}

type deadline struct {
	s     Store
	limit time.Duration
}

// call runs f with the deadline; f's result is only read if it finished in
// time.
func call[T any](ctx context.Context, d *deadline, op string, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, d.limit)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1) // buffered: a late answer must not block
	go func() {
		v, err := f(ctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		if r.err != nil && errors.Is(r.err, context.DeadlineExceeded) && ctx.Err() == context.DeadlineExceeded {
			var zero T
			return zero, &TimeoutError{Op: op, Limit: d.limit}
		}
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		if ctx.Err() == context.DeadlineExceeded {
			return zero, &TimeoutError{Op: op, Limit: d.limit}
		}
		return zero, ctx.Err() // the caller went away
	}
}

func (d *deadline) Add(ctx context.Context, contentID string, c Comment) error {
	_, err := call(ctx, d, "add", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, d.s.Add(ctx, contentID, c)
	})
	return err
}

func (d *deadline) List(ctx context.Context, contentID string) ([]Comment, error) {
	return call(ctx, d, "list", func(ctx context.Context) ([]Comment, error) {
		return d.s.List(ctx, contentID)
	})
}

func (d *deadline) Ping(ctx context.Context) error {
	_, err := call(ctx, d, "ping", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, d.s.Ping(ctx)
	})
	return err
}

func (d *deadline) Close() error { return d.s.Close() }
