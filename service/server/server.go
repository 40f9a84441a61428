// Package server runs the comments API: it opens the configured store,
// serves HTTP, and on shutdown drains in order — readiness fails first, then
// the listener closes and in-flight requests finish, then the store closes.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"microk8s-platform/service/api"
	"microk8s-platform/service/config"
	"microk8s-platform/service/metrics"
	"microk8s-platform/service/store"
)

// Header limits. Clients reach the service through Kong, whose nginx
// accepts a request line and each header line of at most 8 KiB and at most
// four such buffers per request (large_client_header_buffers 4 8k), so no
// request Kong forwards carries much more than 32 KiB of headers; Kong adds
// its own few hundred bytes (X-Forwarded-*, X-Kong-Request-Id, Via). Go's
// default is 1 MiB, which let 100 connections stalled mid-header hold about
// 200 MiB, above the pod's 128Mi limit.
const (
	MaxHeaderBytes    = 64 << 10
	ReadHeaderTimeout = 5 * time.Second
)

// Serve serves on ln until ctx is cancelled, then shuts down gracefully and
// closes s. It returns nil after a clean shutdown. Every store call gets
// cfg.StoreTimeout (store.WithDeadline).
//
// The shutdown order, each step for a reason:
//
//  1. /readyz fails and every response from now on carries
//     Connection: close (api.Drain), so each connection a client still
//     uses is closed by the server right after an answer, never while a
//     request may be on its way to it.
//  2. After cfg.DrainDelay (Kubernetes takes the pod out of its Service and
//     Kong stops picking it) keep-alives go off, and the listener closes,
//     handing over the connections already in its accept queue instead of
//     resetting them (drainingListener).
//  3. Every connection that has started or may still start a request is
//     waited for, up to cfg.ShutdownTimeout: each ends after its answer.
//     Only then http.Server.Shutdown runs, which closes what is idle: in
//     go1.26 (the toolchain we build with) a request read after Shutdown
//     began is dropped unanswered
//     (net/http conn.serve: "if c.server.shuttingDown() { return }" right
//     after readRequest), so Shutdown must not begin while one may arrive.
//  4. The store closes.
func Serve(ctx context.Context, ln net.Listener, s store.Store, cfg config.Config, log *slog.Logger) error {
	if cfg.StoreTimeout > 0 {
		s = store.WithDeadline(s, cfg.StoreTimeout)
	}
	a := api.New(s, metrics.New(), log)
	conns := newConnTracker()
	srv := &http.Server{
		Handler:           a.Handler(),
		MaxHeaderBytes:    MaxHeaderBytes,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ConnState:         conns.track,
	}
	var dl *drainingListener
	if d, ok := newDrainingListener(ln); ok {
		dl, ln = d, d
		defer dl.closeNow()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "store", cfg.StoreKind())

	select {
	case err := <-errc:
		s.Close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	log.Info("shutting down: readiness now fails", "drain_delay", cfg.DrainDelay.String())
	a.Drain()
	time.Sleep(cfg.DrainDelay) // let endpoints controllers see /readyz fail
	deadline := time.Now().Add(cfg.ShutdownTimeout)
	srv.SetKeepAlivesEnabled(false)
	var err error
	if dl != nil {
		_ = ln.Close()
		if serr := <-errc; serr != nil && !errors.Is(serr, net.ErrClosed) && !errors.Is(serr, http.ErrServerClosed) {
			err = serr
		}
		errc <- nil
		if !conns.waitQuiet(deadline) {
			log.Warn("connections still busy at the shutdown timeout", "timeout", cfg.ShutdownTimeout.String())
		}
	}
	sctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if serr := srv.Shutdown(sctx); errors.Is(serr, context.DeadlineExceeded) {
		log.Warn("in-flight requests did not finish in time", "timeout", cfg.ShutdownTimeout.String())
		srv.Close()
	} else if serr != nil && err == nil {
		err = serr
	}
	if cerr := s.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	log.Info("stopped")
	return err
}

// connTracker follows every connection's state (http.Server.ConnState).
type connTracker struct {
	mu    sync.Mutex
	state map[net.Conn]http.ConnState
}

func newConnTracker() *connTracker {
	return &connTracker{state: map[net.Conn]http.ConnState{}}
}

func (t *connTracker) track(c net.Conn, st http.ConnState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch st {
	case http.StateClosed, http.StateHijacked:
		delete(t.state, c)
	default:
		t.state[c] = st
	}
}

// busy counts connections that are serving a request or may yet start
// one on their own: new (accepted, nothing read yet) and active.
func (t *connTracker) busy() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, st := range t.state {
		if st == http.StateNew || st == http.StateActive {
			n++
		}
	}
	return n
}

// waitQuiet waits until no connection is busy, or until deadline; it
// reports whether it got there. It polls, as http.Server.Shutdown does,
// so that serving pays nothing for it.
func (t *connTracker) waitQuiet(deadline time.Time) bool {
	for t.busy() > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}
