// Command comments is the comments API server. Configuration comes from the
// environment (see service/README.md); SIGTERM or SIGINT shut it down
// gracefully.
//
// With DATABASE_URL set it does not wait for PostgreSQL before listening:
// after a node restart the database is usually not up yet, and a process
// that exits is backed off by the kubelet for minutes. It listens at once
// (/healthz answers, /readyz fails), connects in the background with bounded
// back-off, and serves as soon as the database answers. If DATABASE_WAIT
// passes first it shuts down and exits 1, with the last error in its log.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"microk8s-platform/service/api"
	"microk8s-platform/service/config"
	"microk8s-platform/service/server"
	"microk8s-platform/service/store"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "comments:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	log := slog.New(api.LogHandler{Handler: slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.LogLevel})})

	sig, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithCancelCause(sig)
	defer cancel(nil)

	var s store.Store
	if cfg.DatabaseURL == "" {
		s = store.NewMemory()
	} else {
		p, err := store.ConnectPostgres(ctx, cfg.DatabaseURL, store.WaitOptions{
			Timeout: cfg.DatabaseWait,
			OnRetry: func(attempt int, err error, next time.Duration) {
				log.Warn("database not ready, retrying", "attempt", attempt, "error", err.Error(), "next_in", next.String())
			},
		})
		if err != nil {
			return err
		}
		go func() {
			<-p.Done()
			if err := p.Err(); err != nil {
				log.Error("giving up on the database", "error", err.Error(), "waited", cfg.DatabaseWait.String())
				cancel(err)
				return
			}
			if ctx.Err() == nil {
				log.Info("database ready")
			}
		}()
		s = p
	}
	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		s.Close()
		return err
	}
	err = server.Serve(ctx, ln, s, cfg, log)
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return errors.Join(cause, err)
	}
	return err
}
