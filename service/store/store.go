// Package store keeps comments. Two implementations sit behind one
// interface: an in-memory map (the default, and what the original Flask app
// did) and PostgreSQL (when DATABASE_URL is set), so the HTTP layer never
// knows which one it talks to.
package store

import (
	"context"
	"errors"
)

// Comment is one stored comment, in the shape the list endpoint returns.
type Comment struct {
	Email   string `json:"email"`
	Comment string `json:"comment"`
}

// Store is what the API needs from persistence.
//
// List returns the comments of a content id in insertion order and an empty
// (non-nil) slice when there are none; "none" is not an error.
type Store interface {
	Add(ctx context.Context, contentID string, c Comment) error
	List(ctx context.Context, contentID string) ([]Comment, error)
	// Ping reports whether the store can serve requests (readiness).
	Ping(ctx context.Context) error
	// Close releases the store; calls after Close fail with ErrClosed.
	Close() error
}

// ErrClosed is returned by a store used after Close.
var ErrClosed = errors.New("store: closed")
