// Command comments is the comments API server. Configuration comes from the
// environment (see service/README.md); SIGTERM or SIGINT shut it down
// gracefully.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"microk8s-platform/service/api"
	"microk8s-platform/service/config"
	"microk8s-platform/service/server"
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

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	s, err := server.OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		s.Close()
		return err
	}
	return server.Serve(ctx, ln, s, cfg, log)
}
