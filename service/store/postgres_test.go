package store_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"microk8s-platform/service/internal/pgtest"
	"microk8s-platform/service/store"
	"microk8s-platform/service/store/storetest"
)

// pg is one real PostgreSQL for the whole package; each test gets its own database.
var pg *pgtest.Server

func TestMain(m *testing.M) {
	var err error
	pg, err = pgtest.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := pg.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest stop:", err)
	}
	os.Exit(code)
}

func newDatabase(t *testing.T) string {
	t.Helper()
	url, err := pg.NewDatabase(context.Background())
	if err != nil {
		t.Fatalf("create database: %v", err)
	}
	return url
}

func TestPostgresConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := store.OpenPostgres(context.Background(), newDatabase(t))
		if err != nil {
			t.Fatalf("OpenPostgres: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// Replicas starting together all migrate the same fresh database; exactly one
// applies each migration and every one of them ends up with a working store.
func TestPostgresConcurrentMigrations(t *testing.T) {
	ctx := context.Background()
	url := newDatabase(t)
	const replicas = 8
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	for i := range replicas {
		wg.Go(func() {
			s, err := store.OpenPostgres(ctx, url)
			if err == nil {
				err = s.Add(ctx, "race", store.Comment{Email: "r@example.com", Comment: fmt.Sprint(i)})
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var applied, rows int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM comments WHERE content_id = 'race'`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if applied != 1 || rows != replicas {
		t.Fatalf("schema_migrations rows = %d (want 1), comments = %d (want %d)", applied, rows, replicas)
	}
}

// The list query must be able to use the index on content_id.
func TestPostgresListUsesContentIDIndex(t *testing.T) {
	ctx := context.Background()
	url := newDatabase(t)
	s, err := store.OpenPostgres(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var plan string
	// enable_seqscan=off makes the planner pick the index whenever one applies.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `EXPLAIN (FORMAT TEXT) SELECT email, comment FROM comments WHERE content_id = '1' ORDER BY id`)
		if err != nil {
			return err
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		plan = strings.Join(lines, "\n")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "comments_content_id_id_idx"; !strings.Contains(plan, want) {
		t.Fatalf("plan %q does not use %s", plan, want)
	}
}

func TestOpenPostgresErrorsDoNotLeakPassword(t *testing.T) {
	_, err := store.OpenPostgres(context.Background(), "postgres://u:s3cret@127.0.0.1:1/db?connect_timeout=1&sslmode=disable")
	if err == nil {
		t.Fatal("connecting to a closed port succeeded")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error leaks the password: %v", err)
	}
	_, err = store.OpenPostgres(context.Background(), "postgres://u:s3cret@host:notaport/db")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("bad URL error = %v; want an error without the password", err)
	}
}
