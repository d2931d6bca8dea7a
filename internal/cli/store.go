package cli

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/store/postgres"
	"github.com/longhook/longhook/internal/store/sqlite"
)

// openStore picks the driver from the database URL: empty or sqlite://PATH
// is the embedded SQLite store (migrated on open), postgres:// is
// PostgreSQL (which refuses to open with pending migrations unless migrate
// is set).
func openStore(ctx context.Context, url, dataDir string, migrate bool, logger *slog.Logger) (core.Store, error) {
	switch {
	case url == "":
		return sqlite.Open(ctx, filepath.Join(dataDir, "longhook.db"))
	case strings.HasPrefix(url, "sqlite://"):
		return sqlite.Open(ctx, strings.TrimPrefix(url, "sqlite://"))
	case isPostgres(url):
		st, err := postgres.Open(ctx, url, postgres.Options{Migrate: migrate, Logger: logger})
		if err != nil {
			return nil, err
		}
		return st, nil
	default:
		return nil, fmt.Errorf("%w: --database-url must start with sqlite:// or postgres://", errUsage)
	}
}

func isPostgres(url string) bool {
	return strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://")
}

// runMigrate is `longhook migrate up|status`: PostgreSQL schemas are
// migrated explicitly (serve refuses to start on pending migrations unless
// given --migrate); SQLite migrates itself on open.
func runMigrate(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 || (args[0] != "up" && args[0] != "status") {
		return fmt.Errorf("%w: longhook migrate up|status --database-url postgres://…", errUsage)
	}
	fs := newFlagSet("migrate "+args[0], env)
	dataDir, dbURL := storeFlags(fs)
	if err := fs.parse(args[1:]); err != nil {
		return err
	}
	if !isPostgres(*dbURL) {
		if args[0] == "up" {
			st, err := openStore(ctx, *dbURL, *dataDir, true, nil)
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, "sqlite: schema is up to date")
			return st.Close()
		}
		st, err := openStore(ctx, *dbURL, *dataDir, true, nil)
		if err != nil {
			return err
		}
		defer st.Close()
		applied, pending, err := st.(*sqlite.Store).MigrationStatus(ctx)
		if err != nil {
			return err
		}
		printMigrations(env, applied, pending)
		return nil
	}
	if args[0] == "up" {
		applied, err := postgres.MigrateUp(ctx, *dbURL, "")
		if err != nil {
			return err
		}
		if len(applied) == 0 {
			fmt.Fprintln(env.Stdout, "no pending migrations")
		}
		for _, m := range applied {
			fmt.Fprintln(env.Stdout, "applied", m)
		}
		return nil
	}
	applied, pending, err := postgres.MigrationStatus(ctx, *dbURL, "")
	if err != nil {
		return err
	}
	printMigrations(env, applied, pending)
	return nil
}

func printMigrations(env Env, applied, pending []string) {
	for _, m := range applied {
		fmt.Fprintln(env.Stdout, "applied  ", m)
	}
	for _, m := range pending {
		fmt.Fprintln(env.Stdout, "pending  ", m)
	}
}
