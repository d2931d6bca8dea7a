package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// walProgress reads the WAL index (the -shm file) without touching the
// database: the frames in the WAL (mxFrame, offset 16 of the index
// header) and how many of them a checkpoint has copied into the database
// file (nBackfill, the first field after the two 48-byte header copies).
func walProgress(t *testing.T, path string) (frames, backfilled uint32) {
	t.Helper()
	b, err := os.ReadFile(path + "-shm")
	if err != nil || len(b) < 100 {
		t.Fatalf("reading the WAL index: %v (%d bytes)", err, len(b))
	}
	return binary.NativeEndian.Uint32(b[16:]), binary.NativeEndian.Uint32(b[96:])
}

// TestCheckpointsInBackground: commits far below the writer's automatic
// checkpoint threshold are copied into the database file soon after, by
// the store's own checkpointer, not by a later commit that would wait for
// them.
func TestCheckpointsInBackground(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "longhook.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 20 {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO leases (name, owner, expire_time) VALUES (?, 'test', 0)`, "ck"+strconv.Itoa(i))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	frames, backfilled := walProgress(t, path)
	if frames == 0 || frames >= walBackstopPages {
		t.Fatalf("the WAL holds %d frames after the commits; the test needs some, below the backstop %d", frames, walBackstopPages)
	}
	deadline := time.Now().Add(10 * time.Second)
	for backfilled < frames {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d WAL frames checkpointed after 10 s (background checkpoints run: %d)", backfilled, frames, s.checkpoints.Load())
		}
		time.Sleep(checkpointEvery / 4) // polling the index file; nothing here to wait on
		frames, backfilled = walProgress(t, path)
	}
	if s.checkpoints.Load() == 0 {
		t.Fatal("the WAL was checkpointed, but not by the background checkpointer")
	}
}
