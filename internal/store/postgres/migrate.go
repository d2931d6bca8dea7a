package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/pgdb"
	"github.com/longhook/longhook/internal/store/schema"
)

// migrationFS holds the schema as numbered SQL files (0001_init.sql, ...),
// applied in name order, each in its own transaction, and recorded in
// schema_migrations by file name without the extension (the SQLite
// driver's scheme).
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// migrations is the store's schema, recorded in schema_migrations.
func migrations() (pgdb.Migrations, error) {
	ms, err := schema.Load(migrationFS, "migrations")
	return pgdb.Migrations{Table: "schema_migrations", List: ms}, err
}

// migrateLockClass is the first key of the advisory lock taken while
// migrating ("long"); the second is a hash of the schema name, so
// different schemas of one database migrate independently.
const migrateLockClass = 0x6c6f6e67

// MigrationStatus lists the applied and the pending (embedded but not yet
// applied) migration versions of the database at url, each in order.
// schema is Options.Schema ("" for the database's search_path).
func MigrationStatus(ctx context.Context, url, schema string) (applied, pending []string, err error) {
	cfg, err := connConfig(url, schema)
	if err != nil {
		return nil, nil, err
	}
	return migrationStatus(ctx, cfg.ConnConfig)
}

// MigrateUp applies the pending migrations of the database at url (creating
// schema if it is set and missing) and returns the versions it applied.
// Concurrent callers serialise on an advisory lock; each migration runs
// once.
func MigrateUp(ctx context.Context, url, schema string) (applied []string, err error) {
	cfg, err := connConfig(url, schema)
	if err != nil {
		return nil, err
	}
	return migrateUp(ctx, cfg.ConnConfig, schema, slog.New(slog.DiscardHandler))
}

func migrationStatus(ctx context.Context, cfg *pgx.ConnConfig) (applied, pending []string, err error) {
	c, err := connect(ctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: migration status: %w", err)
	}
	defer closeConn(c)
	applied, pending, _, err = status(ctx, c)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: migration status: %w", err)
	}
	return applied, pending, nil
}

// status reads schema_migrations (absent: nothing applied). unknown lists
// applied versions this binary does not embed (a newer binary migrated).
func status(ctx context.Context, c *pgx.Conn) (applied, pending, unknown []string, err error) {
	ms, err := migrations()
	if err != nil {
		return nil, nil, nil, err
	}
	return ms.Status(ctx, c)
}

func migrateUp(ctx context.Context, cfg *pgx.ConnConfig, schema string, log *slog.Logger) (done []string, err error) {
	c, err := connect(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	defer closeConn(c) // also releases the advisory lock
	name := schema
	if name == "" {
		var cur *string
		if err := c.QueryRow(ctx, `SELECT current_schema()`).Scan(&cur); err != nil {
			return nil, fmt.Errorf("postgres: migrate: %w", err)
		}
		if cur == nil {
			return nil, errors.New("postgres: migrate: no schema of search_path exists (set Options.Schema)")
		}
		name = *cur
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	if _, err := c.Exec(ctx, `SELECT pg_advisory_lock($1, $2)`, int32(migrateLockClass), int32(h.Sum32())); err != nil {
		return nil, fmt.Errorf("postgres: migrate: lock: %w", err)
	}
	if schema != "" {
		var exists bool
		if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
			return nil, fmt.Errorf("postgres: migrate: %w", err)
		}
		if !exists {
			if _, err := c.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
				return nil, fmt.Errorf("postgres: migrate: create schema: %w", err)
			}
		}
	}
	ms, err := migrations()
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	done, unknown, err := ms.Up(ctx, c, func(v string) {
		log.Info("postgres.migrated", slog.String("version", v), slog.String("schema", name))
	})
	if len(unknown) > 0 {
		log.Warn("postgres.unknown_migrations", slog.Any("versions", unknown),
			slog.String("hint", "the database was migrated by a newer longhook"))
	}
	if err != nil {
		return done, fmt.Errorf("postgres: migrate %w", err)
	}
	if _, err := c.Exec(ctx, `SELECT pg_advisory_unlock($1, $2)`, int32(migrateLockClass), int32(h.Sum32())); err != nil {
		return done, fmt.Errorf("postgres: migrate: unlock: %w", err)
	}
	return done, nil
}
