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
	"time"

	"microk8s-platform/service/api"
	"microk8s-platform/service/config"
	"microk8s-platform/service/metrics"
	"microk8s-platform/service/store"
)

// OpenStore returns the store the configuration selects.
func OpenStore(ctx context.Context, cfg config.Config) (store.Store, error) {
	if cfg.DatabaseURL == "" {
		return store.NewMemory(), nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return store.OpenPostgres(ctx, cfg.DatabaseURL)
}

// Serve serves on ln until ctx is cancelled, then shuts down gracefully and
// closes s. It returns nil after a clean shutdown.
func Serve(ctx context.Context, ln net.Listener, s store.Store, cfg config.Config, log *slog.Logger) error {
	a := api.New(s, metrics.New(), log)
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
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
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		log.Warn("in-flight requests did not finish in time", "timeout", cfg.ShutdownTimeout.String())
		srv.Close()
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
