package config

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestDefaultsWhenUnset(t *testing.T) {
	c, err := FromEnv(env(nil))
	if err != nil || c != Defaults() || c.StoreKind() != "memory" {
		t.Fatalf("FromEnv(empty) = %+v, %v", c, err)
	}
}

func TestValuesAreRead(t *testing.T) {
	c, err := FromEnv(env(map[string]string{"PORT": "9000", "HOST": "127.0.0.1", "DATABASE_URL": " postgres://x/y ", "LOG_LEVEL": "debug", "SHUTDOWN_TIMEOUT": "30s", "DRAIN_DELAY": "0s", "DATABASE_WAIT": "90s", "STORE_TIMEOUT": "750ms"}))
	want := Config{Host: "127.0.0.1", Port: 9000, DatabaseURL: "postgres://x/y", LogLevel: slog.LevelDebug, ShutdownTimeout: 30 * time.Second, DatabaseWait: 90 * time.Second, StoreTimeout: 750 * time.Millisecond}
	if err != nil || c != want || c.StoreKind() != "postgres" || c.Addr() != "127.0.0.1:9000" {
		t.Fatalf("got %+v, %v; want %+v", c, err, want)
	}
}

func TestEveryBadValueIsNamed(t *testing.T) {
	_, err := FromEnv(env(map[string]string{"PORT": "http", "LOG_LEVEL": "loud", "SHUTDOWN_TIMEOUT": "soon", "DRAIN_DELAY": "-1s", "DATABASE_WAIT": "0s", "STORE_TIMEOUT": "0s"}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`PORT="http"`, `LOG_LEVEL="loud"`, `SHUTDOWN_TIMEOUT="soon"`, `DRAIN_DELAY="-1s"`, `DATABASE_WAIT="0s"`, `STORE_TIMEOUT="0s"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if _, err := FromEnv(env(map[string]string{"PORT": "70000"})); err == nil {
		t.Error("PORT=70000 accepted")
	}
}
