package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/longhook/longhook/internal/secretbox"
	"github.com/longhook/longhook/internal/store/sqlite"
)

// minFreeBytes is the free space under which the SQLite data dir counts
// as full: publishes then fail with 503 UNAVAILABLE (SQLite's "disk
// full"), and /readyz says so until space returns.
const minFreeBytes = 1 << 20

// diskFull is /readyz's reason while the SQLite database's filesystem is
// (nearly) full; "" otherwise, and always with PostgreSQL.
func (s *Server) diskFull() string {
	if s.store.Capabilities().Driver != "sqlite" {
		return ""
	}
	dir := s.cfg.DataDir
	if p, ok := strings.CutPrefix(s.cfg.DatabaseURL, "sqlite://"); ok && p != "" {
		dir = filepath.Dir(p)
	}
	if free, ok := diskFree(dir); ok && free < minFreeBytes {
		return fmt.Sprintf("disk full: %d KiB free for the database in %s", free>>10, dir)
	}
	return ""
}

// refuseNewKeyForSealedData refuses a start that would make a new master
// key (none in the environment or the data dir) for a database that
// already holds values sealed with one — a restore that brought the
// database back but not its master.key, or a second instance without the
// first one's key. A new key could not open them; the start would fail
// later anyway, after writing a master.key that misleads whoever looks
// at the data dir next. The database is read, never written.
func (s *Server) refuseNewKeyForSealedData(ctx context.Context) error {
	var where string
	if s.store != nil { // PostgreSQL, opened before the data dir
		keys, err := s.store.SigningKeys(ctx)
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			return nil
		}
		where = "the PostgreSQL database"
	} else {
		path := sqlitePath(s.cfg.DatabaseURL, s.cfg.DataDir)
		has, err := sqlite.HasSigningKeys(ctx, path)
		if err != nil || !has {
			return err
		}
		where = path
	}
	return errNoKeyForSealedData(s.cfg.DataDir, where)
}

// errNoKeyForSealedData is the refusal to make a new master key in
// dataDir for the database where, which holds values sealed with one.
func errNoKeyForSealedData(dataDir, where string) error {
	return fmt.Errorf("%w: %s does not exist and LONGHOOK_MASTER_KEY is not set, but %s holds secrets sealed with a master key; "+
		"put back the master.key that belongs to this database (from the backup made with it) or set LONGHOOK_MASTER_KEY to it — "+
		"a new key could not open them, so none was made",
		errConfig, filepath.Join(dataDir, secretbox.KeyFileName), where)
}

// warnDataDirMode warns when the data dir (database, master key, bootstrap
// key) can be read or entered by other users: the files in it are 0600,
// but a directory made by hand is often 0755.
func warnDataDirMode(dir string, logger *slog.Logger) {
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm()&0o077 == 0 {
		return
	}
	logger.Warn("serve.data_dir_permissions",
		slog.String("data_dir", dir), slog.String("mode", fi.Mode().Perm().String()),
		slog.String("problem", "other users can read the data dir (keys, secrets, events)"),
		slog.String("fix", "chmod 700 "+dir))
}

// lockDatabase takes the lock of a SQLite database (datadirlock.go),
// once: first before the port is bound, when the database's directory
// exists (else no serve can be using it, and a refused start must not
// create it); then, with create, after the data dir is made.
func (s *Server) lockDatabase(create bool) error {
	if s.dbLock != nil || isPostgres(s.cfg.DatabaseURL) {
		return nil
	}
	path := sqlitePath(s.cfg.DatabaseURL, s.cfg.DataDir)
	if create {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("sqlite: open: %w", err)
		}
	} else if _, err := os.Stat(filepath.Dir(path)); err != nil {
		return nil
	}
	l, err := lockDatabase(path, "serve", hintServe)
	if err != nil {
		return err
	}
	s.dbLock = l
	return nil
}
