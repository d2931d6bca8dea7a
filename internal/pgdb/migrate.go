package pgdb

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/store/schema"
)

// Migrations is a schema's migrations (numbered SQL files, see
// schema.Load) and the table that records which of them a database has
// applied, by version.
type Migrations struct {
	Table string
	List  []schema.Migration
}

// Status reads the applied versions (none while the table is missing)
// and returns them, the pending ones (embedded, not applied) and the
// unknown ones (applied, not embedded: a newer binary migrated), each in
// order.
func (m Migrations) Status(ctx context.Context, c *pgx.Conn) (applied, pending, unknown []string, err error) {
	var exists bool
	if err := c.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, m.Table).Scan(&exists); err != nil {
		return nil, nil, nil, err
	}
	if exists {
		rows, err := c.Query(ctx, `SELECT version FROM `+pgx.Identifier{m.Table}.Sanitize()+` ORDER BY version`)
		if err != nil {
			return nil, nil, nil, err
		}
		if applied, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return nil, nil, nil, err
		}
	}
	for _, mg := range m.List {
		if !slices.Contains(applied, mg.Version) {
			pending = append(pending, mg.Version)
		}
	}
	for _, v := range applied {
		if !slices.ContainsFunc(m.List, func(mg schema.Migration) bool { return mg.Version == v }) {
			unknown = append(unknown, v)
		}
	}
	return applied, pending, unknown, nil
}

// Up creates the table if needed and applies the pending migrations in
// order, each in a transaction of its own without a statement timeout (a
// migration may build an index on a large table), calling applied after
// each. The caller serialises concurrent migrators (an advisory lock).
func (m Migrations) Up(ctx context.Context, c *pgx.Conn, applied func(version string)) (done, unknown []string, err error) {
	table := pgx.Identifier{m.Table}.Sanitize()
	if _, err := c.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (
		version    text PRIMARY KEY,
		apply_time timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return nil, nil, err
	}
	_, pending, unknown, err := m.Status(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	for _, mg := range m.List {
		if !slices.Contains(pending, mg.Version) {
			continue
		}
		err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL statement_timeout = 0`); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, mg.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO `+table+` (version) VALUES ($1)`, mg.Version)
			return err
		})
		if err != nil {
			return done, unknown, fmt.Errorf("%s: %w", mg.Version, err)
		}
		if applied != nil {
			applied(mg.Version)
		}
		done = append(done, mg.Version)
	}
	return done, unknown, nil
}
