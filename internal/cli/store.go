package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/store/sqlite"
)

// openStore picks the driver from the database URL: empty or sqlite://PATH
// is the embedded SQLite store, postgres:// is PostgreSQL.
func openStore(ctx context.Context, url, dataDir string) (core.Store, error) {
	switch {
	case url == "":
		return sqlite.Open(ctx, filepath.Join(dataDir, "longhook.db"))
	case strings.HasPrefix(url, "sqlite://"):
		return sqlite.Open(ctx, strings.TrimPrefix(url, "sqlite://"))
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return nil, fmt.Errorf("%w: the PostgreSQL driver is not part of this build yet", errUsage)
	default:
		return nil, fmt.Errorf("%w: --database-url must start with sqlite:// or postgres://", errUsage)
	}
}
