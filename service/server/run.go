package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"microk8s-platform/service/api"
	"microk8s-platform/service/config"
	"microk8s-platform/service/logbuf"
	"microk8s-platform/service/store"
)

// Run is the service's program, what cmd/comments runs: configuration from
// getenv, the JSON log on stdout, the store (memory, or PostgreSQL
// connected in the background), then Serve until ctx ends.
//
// With DATABASE_URL set it does not wait for PostgreSQL before listening:
// after a node restart the database is usually not up yet, and a process
// that exits is backed off by the kubelet for minutes. It listens at once
// (/healthz answers, /readyz fails), connects in the background with bounded
// back-off, and serves as soon as the database answers. If DATABASE_WAIT
// passes first it shuts down and returns the last error.
func Run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	// The access log's line per request, batched (logbuf): written out
	// every 100 ms, when 64 KiB are waiting, after every warning or error,
	// and when Run returns.
	out := logbuf.New(stdout, 64<<10, 100*time.Millisecond)
	defer out.Close()
	log := slog.New(api.LogHandler{Handler: slog.NewJSONHandler(out, &slog.HandlerOptions{Level: cfg.LogLevel}), Flush: out.Flush, Access: out})

	ctx, cancel := context.WithCancelCause(ctx)
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
	err = Serve(ctx, ln, s, cfg, log)
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return errors.Join(cause, err)
	}
	return err
}
