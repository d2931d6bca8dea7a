package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
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
	case url == "" || strings.HasPrefix(url, "sqlite://"):
		st, err := sqlite.Open(ctx, sqlitePath(url, dataDir))
		if err != nil {
			return nil, err // not a nil *sqlite.Store in a non-nil core.Store
		}
		return st, nil
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

// errNoDatabase is the answer of a command that needs an existing SQLite
// database and finds none at path: a mistyped --data-dir must not get a
// fresh, empty database (serve's first start is what creates one).
func errNoDatabase(path string) error {
	return fmt.Errorf("no database at %s (serve creates it; check --data-dir or --database-url)", path)
}

// needDatabase returns errNoDatabase when --database-url and --data-dir
// name a SQLite file that does not exist; PostgreSQL is not checked (a
// database that cannot be reached or is not migrated refuses on open).
func needDatabase(url, dataDir string) error {
	if isPostgres(url) {
		return nil
	}
	path := sqlitePath(url, dataDir)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return errNoDatabase(path)
	}
	return nil
}

// sqlitePath is the SQLite database file of --database-url (empty or
// sqlite://PATH) and --data-dir.
func sqlitePath(url, dataDir string) string {
	if p, ok := strings.CutPrefix(url, "sqlite://"); ok {
		return p
	}
	return filepath.Join(dataDir, "longhook.db")
}

func isPostgres(url string) bool {
	return strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://")
}

// runMigrate is `longhook migrate up|status`: PostgreSQL schemas are
// migrated explicitly (serve refuses to start on pending migrations unless
// given --migrate); SQLite migrates itself on open.
// migrateVerbs are the verbs of migrate.
var migrateVerbs = []subcommand{
	{name: "up", summary: "apply pending migrations (SQLite migrates itself on open): up --database-url postgres://…"},
	{name: "status", summary: "list applied and pending migrations, changing nothing"},
}

func runMigrate(ctx context.Context, args []string, env Env) error {
	if err := checkVerb("migrate", migrateVerbs, false, args, env); err != nil {
		return err
	}
	env = withVerb(env, migrateVerbs, args[0])
	fs := newFlagSet("migrate "+args[0], env)
	dataDir, dbURL := storeFlags(fs)
	if err := fs.parse(args[1:]); err != nil {
		return err
	}
	if !isPostgres(*dbURL) {
		return migrateSQLite(ctx, args[0], *dbURL, *dataDir, env)
	}
	if args[0] == "up" {
		applied, err := postgres.MigrateUp(ctx, *dbURL, "")
		if err != nil {
			return err
		}
		printApplied(env, applied)
		return nil
	}
	applied, pending, err := postgres.MigrationStatus(ctx, *dbURL, "")
	if err != nil {
		return err
	}
	printMigrations(env, applied, pending)
	return nil
}

// migrateSQLite is migrate up|status (verb) on a SQLite database.
func migrateSQLite(ctx context.Context, verb, dbURL, dataDir string, env Env) error {
	// Read first: opening a Store would apply what is pending (and
	// create a missing file) before reporting it. A missing file is
	// refused for up too: a mistyped --data-dir must not get a fresh,
	// empty database reported as migrated.
	path := filepath.Join(dataDir, "longhook.db")
	switch {
	case strings.HasPrefix(dbURL, "sqlite://"):
		path = strings.TrimPrefix(dbURL, "sqlite://")
	case dbURL != "":
		return fmt.Errorf("%w: --database-url must start with sqlite:// or postgres://", errUsage)
	}
	if verb == "up" {
		// Not under a running serve: its statements and state assume
		// the schema it opened (datadirlock.go). status only reads.
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return errNoDatabase(path)
		}
		l, err := lockDatabase(path, "migrate up", hintMigrate)
		if err != nil {
			return err
		}
		defer l.release(false)
	}
	applied, pending, err := sqlite.MigrationStatusOf(ctx, path)
	if errors.Is(err, os.ErrNotExist) {
		return errNoDatabase(path)
	}
	if err != nil {
		return err
	}
	if verb == "status" {
		printMigrations(env, applied, pending)
		return nil
	}
	st, err := openStore(ctx, dbURL, dataDir, true, nil)
	if err != nil {
		return err
	}
	printApplied(env, pending)
	return st.Close()
}

// printApplied reports the migrations migrate up applied.
func printApplied(env Env, applied []string) {
	if len(applied) == 0 {
		fmt.Fprintln(env.Stdout, "no pending migrations")
	}
	for _, m := range applied {
		fmt.Fprintln(env.Stdout, "applied", m)
	}
}

func printMigrations(env Env, applied, pending []string) {
	for _, m := range applied {
		fmt.Fprintln(env.Stdout, "applied  ", m)
	}
	for _, m := range pending {
		fmt.Fprintln(env.Stdout, "pending  ", m)
	}
}
