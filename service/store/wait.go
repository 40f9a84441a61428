package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotReady is what a Pending store answers until its database is reached.
// The API maps it, like any store failure, to 503, and /readyz fails with it:
// the process is alive (liveness holds) but cannot serve yet.
var ErrNotReady = errors.New("store: database not reached yet")

// WaitOptions bound how long and how often ConnectPostgres retries.
type WaitOptions struct {
	// Timeout is the whole wait; when it passes without a connection the
	// store gives up and Done reports the last error. It must fit inside the
	// Deployment's start-up probe window, so the process exits with a clear
	// message before the kubelet kills it. Zero means 4 minutes.
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the pause between attempts, which
	// doubles from the first to the second. Zero means 250ms and 5s.
	MinBackoff, MaxBackoff time.Duration
	// AttemptTimeout bounds one connect-and-migrate attempt; zero means 10s.
	AttemptTimeout time.Duration
	// OnRetry, when set, is called after each failed attempt.
	OnRetry func(attempt int, err error, next time.Duration)
}

func (o *WaitOptions) defaults() {
	if o.Timeout <= 0 {
		o.Timeout = 4 * time.Minute
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 250 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(5*time.Second, o.MinBackoff)
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = 10 * time.Second
	}
}

// Pending is a Store that connects to PostgreSQL in the background. Until the
// database answers (and the migrations are applied) every call fails with
// ErrNotReady; from then on it is the PostgreSQL store. It exists because
// after a node restart the service usually starts before its database: it
// must come up, say it is not ready, and serve as soon as it can, instead of
// exiting and being backed off by the kubelet for minutes.
type Pending struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.RWMutex
	pg     *Postgres
	err    error // set when the wait gave up
	closed bool
}

// ConnectPostgres starts connecting to databaseURL and returns at once. Only
// a malformed URL fails here; unreachable hosts, refused connections, a
// database still recovering and rejected passwords (a password change not yet
// applied) are all retried with bounded exponential back-off until
// opts.Timeout.
func ConnectPostgres(ctx context.Context, databaseURL string, opts WaitOptions) (*Pending, error) {
	if _, err := pgxpool.ParseConfig(databaseURL); err != nil {
		return nil, errors.New("store: DATABASE_URL is not a valid PostgreSQL connection string")
	}
	opts.defaults()
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	p := &Pending{cancel: cancel, done: make(chan struct{})}
	go p.run(ctx, databaseURL, opts)
	return p, nil
}

func (p *Pending) run(ctx context.Context, databaseURL string, opts WaitOptions) {
	defer close(p.done)
	defer p.cancel()
	pause := opts.MinBackoff
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, opts.AttemptTimeout)
		pg, err := OpenPostgres(actx, databaseURL)
		cancel()
		if err == nil {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.closed {
				pg.Close()
				return
			}
			p.pg = pg
			return
		}
		if ctx.Err() == nil && opts.OnRetry != nil {
			opts.OnRetry(attempt, err, pause)
		}
		select {
		case <-ctx.Done():
			p.mu.Lock()
			defer p.mu.Unlock()
			if !p.closed {
				p.err = fmt.Errorf("store: database not reachable after %s (%d attempts): %w", opts.Timeout, attempt, err)
			}
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, opts.MaxBackoff)
	}
}

// Done is closed when the wait is over: connected, given up, or closed.
func (p *Pending) Done() <-chan struct{} { return p.done }

// Err is the reason the wait gave up, once Done is closed; nil after success.
func (p *Pending) Err() error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.err
}

func (p *Pending) current() (*Postgres, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	switch {
	case p.closed:
		return nil, ErrClosed
	case p.pg != nil:
		return p.pg, nil
	case p.err != nil:
		return nil, p.err
	}
	return nil, ErrNotReady
}

// Add inserts one comment once connected.
func (p *Pending) Add(ctx context.Context, contentID string, c Comment) error {
	pg, err := p.current()
	if err != nil {
		return err
	}
	return pg.Add(ctx, contentID, c)
}

// List lists comments once connected.
func (p *Pending) List(ctx context.Context, contentID string) ([]Comment, error) {
	pg, err := p.current()
	if err != nil {
		return nil, err
	}
	return pg.List(ctx, contentID)
}

// Ping fails with ErrNotReady until connected, then checks the pool.
func (p *Pending) Ping(ctx context.Context) error {
	pg, err := p.current()
	if err != nil {
		return err
	}
	return pg.Ping(ctx)
}

// Close stops the wait and closes the pool, if there is one.
func (p *Pending) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	pg := p.pg
	p.mu.Unlock()
	p.cancel()
	<-p.done
	if pg != nil {
		return pg.Close()
	}
	return nil
}
