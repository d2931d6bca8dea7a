// Package schema reads a driver's migrations: numbered SQL files
// (0001_init.sql, 0002_jobs.sql, ...) applied in name order and recorded
// in schema_migrations by file name without the extension. Both store
// drivers embed their own files (the SQL dialects differ) and share this
// naming and ordering.
package schema

import (
	"io/fs"
	"slices"
	"strings"
)

// Migration is one numbered SQL file.
type Migration struct {
	Version string // "0001_init"
	SQL     string
}

// Load returns the *.sql files of dir in fsys, in name order.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	names, err := fs.Glob(fsys, dir+"/*.sql")
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	out := make([]Migration, 0, len(names))
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		v := strings.TrimSuffix(strings.TrimPrefix(n, dir+"/"), ".sql")
		out = append(out, Migration{Version: v, SQL: string(b)})
	}
	return out, nil
}
