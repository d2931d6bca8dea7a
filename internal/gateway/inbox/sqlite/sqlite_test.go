package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/longhook/longhook/internal/gateway/inbox"
	"github.com/longhook/longhook/internal/gateway/inbox/inboxtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestSQLiteInbox(t *testing.T) {
	t.Parallel()
	inboxtest.Run(t, func(t *testing.T) (inbox.Inbox, func(t *testing.T) inbox.Inbox) {
		path := filepath.Join(t.TempDir(), "inbox.db")
		open := func(t *testing.T) inbox.Inbox {
			in, err := Open(context.Background(), path, "NORMAL")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = in.Close() })
			return in
		}
		return open(t), open
	})
}
