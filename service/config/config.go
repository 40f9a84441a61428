// Package config reads the service's settings from the environment. Every
// setting has a default, so the binary runs with none set; a value that is
// set but malformed stops start-up with an error naming the variable.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
)

// Config is the service's configuration.
type Config struct {
	Host            string        // HOST: address to listen on; default "" (all interfaces)
	Port            int           // PORT, default 8080
	DatabaseURL     string        // DATABASE_URL; empty means the in-memory store
	LogLevel        slog.Level    // LOG_LEVEL: debug, info, warn, error; default info
	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT: how long in-flight requests get; default 15s
	DrainDelay      time.Duration // DRAIN_DELAY: /readyz fails this long before the listener closes; default 5s
	// DATABASE_WAIT: how long start-up waits for PostgreSQL (retrying with
	// back-off, /readyz failing meanwhile) before the process gives up and
	// exits; default 4m. Keep it inside the start-up probe's window.
	DatabaseWait time.Duration
	// STORE_TIMEOUT: the server-side deadline of every store call; past it
	// the client gets a 503 instead of waiting on a hung database; default 2s.
	StoreTimeout time.Duration
}

// Defaults are the values used for unset variables.
func Defaults() Config {
	return Config{Port: 8080, LogLevel: slog.LevelInfo, ShutdownTimeout: 15 * time.Second, DrainDelay: 5 * time.Second, DatabaseWait: 4 * time.Minute, StoreTimeout: 2 * time.Second}
}

// FromEnv reads the configuration with getenv (os.Getenv in production) and
// reports every malformed variable at once.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Defaults()
	var errs []error
	if v := getenv("PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("PORT=%q: want a TCP port number 1-65535", v))
		}
		c.Port = p
	}
	c.Host = strings.TrimSpace(getenv("HOST"))
	c.DatabaseURL = strings.TrimSpace(getenv("DATABASE_URL"))
	if v := getenv("LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			errs = append(errs, fmt.Errorf("LOG_LEVEL=%q: want debug, info, warn or error", v))
		}
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{{"SHUTDOWN_TIMEOUT", &c.ShutdownTimeout}, {"DRAIN_DELAY", &c.DrainDelay}, {"DATABASE_WAIT", &c.DatabaseWait}, {"STORE_TIMEOUT", &c.StoreTimeout}} {
		if v := getenv(d.name); v != "" {
			t, err := time.ParseDuration(v)
			if err != nil || t < 0 {
				errs = append(errs, fmt.Errorf("%s=%q: want a non-negative Go duration such as 15s or 500ms", d.name, v))
				continue
			}
			if t == 0 && d.name == "DATABASE_WAIT" {
				errs = append(errs, fmt.Errorf("DATABASE_WAIT=%q: want a positive Go duration such as 4m (the service would give up before its first attempt)", v))
				continue
			}
			if t == 0 && d.name == "STORE_TIMEOUT" {
				errs = append(errs, fmt.Errorf("STORE_TIMEOUT=%q: want a positive Go duration such as 2s (every store call would time out at once)", v))
				continue
			}
			*d.dst = t
		}
	}
	return c, errors.Join(errs...)
}

// Addr is the listen address, host:port.
func (c Config) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// StoreKind says which store the configuration selects, for the start-up log.
func (c Config) StoreKind() string {
	if c.DatabaseURL != "" {
		return "postgres"
	}
	return "memory"
}
