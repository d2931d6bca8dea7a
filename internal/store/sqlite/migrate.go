package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/longhook/longhook/internal/store/schema"
)

// migrationFS holds the schema as numbered SQL files (0001_init.sql, ...),
// applied in name order, each in its own transaction, and recorded in
// schema_migrations by file name without the extension.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

type migration = schema.Migration

func migrations() ([]migration, error) { return schema.Load(migrationFS, "migrations") }

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    TEXT PRIMARY KEY,
	apply_time INTEGER NOT NULL
)`

// migrate applies every pending migration. Each runs in an IMMEDIATE
// transaction that re-checks schema_migrations, so two processes opening
// the same new file at once apply each migration exactly once.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	// In an IMMEDIATE transaction too: as a statement of its own it read
	// the schema, then took the write lock, and when another process
	// created the table in between, SQLite refused the stale snapshot
	// with SQLITE_BUSY at once, without waiting out the busy timeout.
	if err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, createMigrationsTable)
		return err
	}); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	for _, m := range ms {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx,
				`SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx,
				`INSERT INTO schema_migrations (version, apply_time) VALUES (?, ?)`,
				m.Version, time.Now().UnixMicro())
			return err
		})
		if err != nil {
			return fmt.Errorf("sqlite: migrate %s: %w", m.Version, err)
		}
	}
	return nil
}

// MigrationStatus lists the applied and the pending (embedded but not yet
// applied) migration versions, each in order. Open applies every pending
// migration, so pending is empty unless another process with an older
// binary is looking at a newer file (or the reverse).
func (s *Store) MigrationStatus(ctx context.Context) (applied, pending []string, err error) {
	return migrationStatus(ctx, s.r)
}

// MigrationStatusOf is MigrationStatus of the database file at path,
// read without opening a Store: it migrates nothing and creates nothing
// (a missing file is an error), so `longhook migrate status` can look at
// a file an older or newer server is using.
func MigrationStatusOf(ctx context.Context, path string) (applied, pending []string, err error) {
	if _, err := os.Stat(path); err != nil {
		return nil, nil, fmt.Errorf("sqlite: migration status: %w", err)
	}
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: migration status: %w", err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx,
		`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil {
		return nil, nil, fmt.Errorf("sqlite: migration status: %w", err)
	}
	if n == 0 { // a database no longhook has opened yet: everything pending
		return migrationStatus(ctx, nil)
	}
	return migrationStatus(ctx, db)
}

// migrationStatus compares the versions recorded in db's
// schema_migrations (none when db is nil) with the embedded migrations.
func migrationStatus(ctx context.Context, db *sql.DB) (applied, pending []string, err error) {
	ms, err := migrations()
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: migration status: %w", err)
	}
	done := map[string]bool{}
	if db != nil {
		rows, err := db.QueryContext(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
		if err != nil {
			return nil, nil, fmt.Errorf("sqlite: migration status: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				return nil, nil, fmt.Errorf("sqlite: migration status: %w", err)
			}
			applied = append(applied, v)
			done[v] = true
		}
		if err := rows.Err(); err != nil {
			return nil, nil, fmt.Errorf("sqlite: migration status: %w", err)
		}
	}
	for _, m := range ms {
		if !done[m.Version] {
			pending = append(pending, m.Version)
		}
	}
	return applied, pending, nil
}

// HasSigningKeys reports, reading the file read-only, whether the
// database at path holds JWT signing keys: every serve start seals one
// with the master key, so a database that has them was used with a
// master key. A missing file, or one no serve has written, has none.
func HasSigningKeys(ctx context.Context, path string) (bool, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		return false, fmt.Errorf("sqlite: %w", err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx,
		`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'signing_keys'`).Scan(&n); err != nil || n == 0 {
		if err != nil {
			err = fmt.Errorf("sqlite: %w", err)
		}
		return false, err
	}
	var has bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM signing_keys)`).Scan(&has); err != nil {
		return false, fmt.Errorf("sqlite: %w", err)
	}
	return has, nil
}
