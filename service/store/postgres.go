package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLockID is the pg_advisory_xact_lock key that serialises schema
// migrations when several replicas start at once ("comments" in ASCII).
const migrationLockID = 0x636f6d6d656e7473

// Postgres is a Store backed by PostgreSQL through a pgx connection pool.
type Postgres struct {
	pool *pgxpool.Pool
}

// OpenPostgres connects to databaseURL, applies the embedded migrations and
// returns a ready store. It fails if the database cannot be reached.
func OpenPostgres(ctx context.Context, databaseURL string) (*Postgres, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		// pgx's message can echo the URL, password included: keep it out.
		return nil, errors.New("store: DATABASE_URL is not a valid PostgreSQL connection string")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: connect to %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	if err := Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return &Postgres{pool: pool}, nil
}

// Migrate applies the embedded migrations that the database has not seen, in
// file-name order, inside one transaction that holds an advisory lock: when
// replicas race at start-up, one applies them and the others wait, then find
// nothing left to do.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLockID)); err != nil {
			return fmt.Errorf("store: migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("store: create schema_migrations: %w", err)
		}
		for _, name := range names {
			version, err := migrationVersion(name)
			if err != nil {
				return err
			}
			var done bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, version).Scan(&done); err != nil {
				return fmt.Errorf("store: read schema_migrations: %w", err)
			}
			if done {
				continue
			}
			sql, err := migrationFiles.ReadFile(name)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return fmt.Errorf("store: migration %s: %w", name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, version); err != nil {
				return fmt.Errorf("store: record migration %s: %w", name, err)
			}
		}
		return nil
	})
}

// migrationVersion reads the number in front of "0001_name.sql".
func migrationVersion(path string) (int, error) {
	base := path[strings.LastIndex(path, "/")+1:]
	num, _, ok := strings.Cut(base, "_")
	v, err := strconv.Atoi(num)
	if !ok || err != nil || v <= 0 {
		return 0, fmt.Errorf("store: migration %q must be named NNNN_description.sql", path)
	}
	return v, nil
}

// Add inserts one comment.
func (p *Postgres) Add(ctx context.Context, contentID string, c Comment) error {
	_, err := p.pool.Exec(ctx,
		`INSERT INTO comments (content_id, email, comment) VALUES ($1, $2, $3)`,
		contentID, c.Email, c.Comment)
	return p.wrap("add", err)
}

// List returns the comments of contentID in insertion order.
func (p *Postgres) List(ctx context.Context, contentID string) ([]Comment, error) {
	rows, err := p.pool.Query(ctx,
		`SELECT email, comment FROM comments WHERE content_id = $1 ORDER BY id`, contentID)
	if err != nil {
		return nil, p.wrap("list", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Comment, error) {
		var c Comment
		err := row.Scan(&c.Email, &c.Comment)
		return c, err
	})
	if err != nil {
		return nil, p.wrap("list", err)
	}
	if out == nil {
		out = []Comment{}
	}
	return out, nil
}

// Ping checks that a connection can be used.
func (p *Postgres) Ping(ctx context.Context) error {
	return p.wrap("ping", p.pool.Ping(ctx))
}

// Close closes the pool, waiting for connections in use to be returned.
func (p *Postgres) Close() error {
	p.pool.Close()
	return nil
}

func (p *Postgres) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if strings.Contains(err.Error(), "closed pool") {
		return ErrClosed
	}
	return fmt.Errorf("store: %s: %w", op, err)
}
