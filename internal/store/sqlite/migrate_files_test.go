package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// TestFilesPerProjectMigration upgrades a database whose files are keyed
// by id alone (before 0009): every file is kept as it was, its id is then
// free in other projects, and the table has no leftover.
func TestFilesPerProjectMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	// The schema before 0009, holding one file.
	for _, q := range []string{
		`DROP TABLE files`,
		`CREATE TABLE files (
			id TEXT PRIMARY KEY, project_id TEXT NOT NULL, display_name TEXT NOT NULL DEFAULT '',
			mime_type TEXT NOT NULL DEFAULT '', size_bytes INTEGER NOT NULL DEFAULT 0,
			sha256 BLOB NOT NULL DEFAULT x'', source TEXT NOT NULL DEFAULT '',
			create_time INTEGER NOT NULL DEFAULT 0, update_time INTEGER NOT NULL DEFAULT 0,
			expire_time INTEGER NOT NULL DEFAULT 0)`,
		`CREATE INDEX files_project ON files (project_id, id)`,
		`CREATE INDEX files_expiring ON files (expire_time) WHERE expire_time > 0`,
		`DELETE FROM schema_migrations WHERE version = '0009_files_per_project'`,
	} {
		if _, err := s.w.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	old := &core.File{ID: "kept", ProjectID: "d", DisplayName: "old", MIMEType: "text/plain", SizeBytes: 3,
		SHA256: []byte{1, 2, 3}, Source: "UPLOADED", CreateTime: at, UpdateTime: at, ExpireTime: at.Add(time.Hour)}
	if err := s.CreateFile(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFile(ctx, &core.File{ID: "kept", ProjectID: "c"}); !errors.Is(err, core.ErrAlreadyExists) {
		t.Fatalf("the old schema took the id in another project: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.GetFile(ctx, "d", "kept")
	if err != nil {
		t.Fatalf("GetFile after the migration: %v", err)
	}
	if got.DisplayName != old.DisplayName || got.MIMEType != old.MIMEType || got.SizeBytes != old.SizeBytes ||
		string(got.SHA256) != string(old.SHA256) || got.Source != old.Source || !got.CreateTime.Equal(at) ||
		!got.UpdateTime.Equal(at) || !got.ExpireTime.Equal(old.ExpireTime) {
		t.Errorf("file after the migration = %+v, want %+v", got, old)
	}
	if err := s.CreateFile(ctx, &core.File{ID: "kept", ProjectID: "c"}); err != nil {
		t.Errorf("CreateFile(same id, other project) after the migration: %v", err)
	}
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name IN ('files_new', 'files_project')`).Scan(&n); err != nil || n != 0 {
		t.Errorf("leftovers of the rebuild: %d, %v", n, err)
	}
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = 'files_expiring'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("files_expiring index: %d, %v", n, err)
	}
}
