package store

import (
	"context"
	"sync"
)

// Memory is a Store held in process memory. It is safe for concurrent use and
// loses everything when the process exits, as the original Flask app did.
type Memory struct {
	mu       sync.RWMutex
	comments map[string][]Comment
	closed   bool
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{comments: make(map[string][]Comment)}
}

// Add appends c to the comments of contentID.
func (m *Memory) Add(ctx context.Context, contentID string, c Comment) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.comments[contentID] = append(m.comments[contentID], c)
	return nil
}

// List returns a copy of the comments of contentID in insertion order.
func (m *Memory) List(ctx context.Context, contentID string) ([]Comment, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	out := make([]Comment, len(m.comments[contentID]))
	copy(out, m.comments[contentID])
	return out, nil
}

// Ping fails only after Close.
func (m *Memory) Ping(ctx context.Context) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return ErrClosed
	}
	return ctx.Err()
}

// Close marks the store closed.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
