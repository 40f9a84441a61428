package dbroles_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"microk8s-platform/service/dbroles"
	"microk8s-platform/service/internal/pgtest"
	"microk8s-platform/service/store"
)

const (
	role = "comments"
	db   = "comments"
)

// server starts a PostgreSQL whose TCP connections need a password
// (scram-sha-256) and whose unix socket is trusted, as in the official image.
func server(t *testing.T) *pgtest.Server {
	t.Helper()
	pg, err := pgtest.StartWith(pgtest.Options{HostAuth: "scram-sha-256"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Stop() })
	return pg
}

// apply runs dbroles.Script once, exactly as the sidecar runs it, over the
// unix socket, with the given Secret files.
func apply(t *testing.T, pg *pgtest.Server, files map[string]string) {
	t.Helper()
	dir := t.TempDir()
	for name, v := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("bash", "-c", dbroles.Script)
	state := t.TempDir()
	cmd.Env = append(os.Environ(), "ONCE=1", "PGHOST="+pg.Dir, "PGPORT="+strconv.Itoa(pg.Port), "PGUSER=postgres",
		"APP_ROLE="+role, "APP_DATABASE="+db, "SECRETS_DIR="+dir, "STATE_DIR="+state)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("roles script: %v\n%s", err, out)
	}
	for _, f := range []string{dbroles.HeartbeatFile, dbroles.AppliedFile} {
		if _, err := os.Stat(filepath.Join(state, f)); err != nil {
			t.Errorf("the probes' file %s was not touched: %v", f, err)
		}
	}
	for _, v := range files {
		if v != "" && strings.Contains(string(out), v) {
			t.Fatalf("the script printed a password: %s", out)
		}
	}
}

func connect(t *testing.T, url string) (*pgx.Conn, error) {
	t.Helper()
	c, err := pgx.Connect(context.Background(), url)
	if err == nil {
		t.Cleanup(func() { c.Close(context.Background()) })
	}
	return c, err
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// A password change is applied to the role by the script the sidecar runs:
// the old password stops working, the new one works, the data stays.
func TestPasswordChangeIsAppliedToTheRole(t *testing.T) {
	pg := server(t)
	ctx := context.Background()
	apply(t, pg, map[string]string{dbroles.AppPasswordFile: "first-password"})
	s, err := store.OpenPostgres(ctx, pg.UserURL(role, "first-password", db))
	if err != nil {
		t.Fatalf("the app role cannot connect with its password: %v", err)
	}
	if err := s.Add(ctx, "1", store.Comment{Email: "a@example.com", Comment: "before rotation"}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	apply(t, pg, map[string]string{dbroles.AppPasswordFile: "second-password"})
	if _, err := connect(t, pg.UserURL(role, "first-password", db)); sqlState(err) != "28P01" {
		t.Fatalf("old password after rotation: %v, want 28P01 invalid_password", err)
	}
	s, err = store.OpenPostgres(ctx, pg.UserURL(role, "second-password", db))
	if err != nil {
		t.Fatalf("new password after rotation: %v", err)
	}
	defer s.Close()
	if got, err := s.List(ctx, "1"); err != nil || len(got) != 1 {
		t.Fatalf("data after rotation: %v %v", got, err)
	}
	// Applying again with nothing changed is harmless.
	apply(t, pg, map[string]string{dbroles.AppPasswordFile: "second-password"})
}

// The superuser's password follows admin-password when it is set.
func TestAdminPasswordChangeIsApplied(t *testing.T) {
	pg := server(t)
	apply(t, pg, map[string]string{dbroles.AppPasswordFile: "app-pw", dbroles.AdminPasswordFile: "admin-pw-2"})
	if _, err := connect(t, pg.URL("postgres")); sqlState(err) != "28P01" {
		t.Fatalf("superuser with its old password: %v, want 28P01", err)
	}
	if _, err := connect(t, pg.UserURL("postgres", "admin-pw-2", "postgres")); err != nil {
		t.Fatalf("superuser with the new password: %v", err)
	}
}

// The service's role owns its schema and nothing else: it runs the
// migrations and serves, but cannot create roles or databases, reach the
// other databases, read another schema, or write to public.
func TestAppRoleHasLeastPrivilege(t *testing.T) {
	pg := server(t)
	ctx := context.Background()
	admin, err := connect(t, pg.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`CREATE DATABASE other`} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	apply(t, pg, map[string]string{dbroles.AppPasswordFile: "app-pw"})

	// Someone else's schema in the app's own database.
	adminApp, err := connect(t, pg.URL(db))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adminApp.Exec(ctx, `CREATE SCHEMA billing; CREATE TABLE billing.cards (n text); INSERT INTO billing.cards VALUES ('4111')`); err != nil {
		t.Fatal(err)
	}

	url := pg.UserURL(role, "app-pw", db)
	s, err := store.OpenPostgres(ctx, url)
	if err != nil {
		t.Fatalf("the app role cannot migrate its schema: %v", err)
	}
	defer s.Close()
	if err := s.Add(ctx, "1", store.Comment{Email: "a@example.com", Comment: "x"}); err != nil {
		t.Fatal(err)
	}
	app, err := connect(t, url)
	if err != nil {
		t.Fatal(err)
	}
	var schema string
	if err := app.QueryRow(ctx, `SELECT table_schema FROM information_schema.tables WHERE table_name = 'comments'`).Scan(&schema); err != nil || schema != role {
		t.Fatalf("the comments table is in schema %q (%v), want %q", schema, err, role)
	}
	var super, createRole, createDB bool
	if err := app.QueryRow(ctx, `SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user`).Scan(&super, &createRole, &createDB); err != nil {
		t.Fatal(err)
	}
	if super || createRole || createDB {
		t.Fatalf("app role: superuser=%v createrole=%v createdb=%v", super, createRole, createDB)
	}
	for _, q := range []string{
		`CREATE ROLE intruder LOGIN SUPERUSER`,
		`CREATE ROLE intruder`,
		`CREATE DATABASE mine`,
		`SELECT * FROM billing.cards`,
		`CREATE TABLE public.planted (n int)`,
		`ALTER ROLE postgres PASSWORD 'taken'`,
	} {
		if _, err := app.Exec(ctx, q); sqlState(err) != "42501" {
			t.Errorf("app role: %s: %v, want 42501 insufficient_privilege", q, err)
		}
	}
	for _, other := range []string{"postgres", "other", "template1"} {
		if _, err := connect(t, pg.UserURL(role, "app-pw", other)); sqlState(err) != "42501" {
			t.Errorf("app role connecting to database %s: %v, want 42501", other, err)
		}
	}
}

// The script needs the app password; without it, it fails and says why,
// rather than creating a role with no password.
func TestMissingAppPasswordFails(t *testing.T) {
	pg := server(t)
	cmd := exec.Command("bash", "-c", dbroles.Script)
	cmd.Env = append(os.Environ(), "ONCE=1", "PGHOST="+pg.Dir, "PGPORT="+strconv.Itoa(pg.Port), "PGUSER=postgres",
		"APP_ROLE="+role, "APP_DATABASE="+db, "SECRETS_DIR="+t.TempDir(), "STATE_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "app-password is missing") {
		t.Fatalf("err=%v out=%s", err, out)
	}
}

// As the sidecar runs it (a loop, no ONCE): a change of the mounted file —
// the kubelet swaps a Secret volume's files by renaming — is applied within
// a pass, and SIGTERM ends the loop at once with status 0.
func TestSidecarLoopAppliesAChangedSecretFile(t *testing.T) {
	pg := server(t)
	dir, state := t.TempDir(), t.TempDir()
	write := func(pw string) {
		tmp := filepath.Join(dir, ".tmp")
		if err := os.WriteFile(tmp, []byte(pw), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, dbroles.AppPasswordFile)); err != nil {
			t.Fatal(err)
		}
	}
	write("loop-first")
	cmd := exec.Command("bash", "-c", dbroles.Script)
	cmd.Env = append(os.Environ(), "INTERVAL=0.2", "PGHOST="+pg.Dir, "PGPORT="+strconv.Itoa(pg.Port), "PGUSER=postgres",
		"APP_ROLE="+role, "APP_DATABASE="+db, "SECRETS_DIR="+dir, "STATE_DIR="+state)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	until := func(pw string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			c, err := pgx.Connect(context.Background(), pg.UserURL(role, pw, db))
			if err == nil {
				c.Close(context.Background())
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("password %q never accepted: %v", pw, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	until("loop-first")
	write("loop-second")
	until("loop-second")
	if _, err := connect(t, pg.UserURL(role, "loop-first", db)); sqlState(err) != "28P01" {
		t.Fatalf("old password after the file changed: %v", err)
	}
	begun := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil || time.Since(begun) > 5*time.Second {
		t.Fatalf("after SIGTERM: %v in %s", err, time.Since(begun))
	}
}
