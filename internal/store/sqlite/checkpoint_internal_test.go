package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
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

// walFrames is the number of frames in the WAL.
func walFrames(t *testing.T, path string) uint32 {
	t.Helper()
	frames, _ := walProgress(t, path)
	return frames
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
		time.Sleep(25 * time.Millisecond) // polling the index file; nothing here to wait on
		frames, backfilled = walProgress(t, path)
	}
	if s.checkpoints.Load() == 0 {
		t.Fatal("the WAL was checkpointed, but not by the background checkpointer")
	}
}

// TestCheckpointsByWALFrames: the background checkpointer runs when the
// commits since the last checkpoint have written checkpointFrames pages to
// the WAL, counted from the writer connection's own count of pages
// written, and not before (the longest wait is set to an hour here, so
// only the frames can start one).
func TestCheckpointsByWALFrames(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "longhook.db")
	s, err := OpenWithOptions(ctx, path, Options{checkpointIdle: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	payload := bytes.Repeat([]byte("x"), 2000)
	publish := func(i int) {
		t.Helper()
		if _, err := s.PublishEvents(ctx, []core.NewEvent{rawEvent("e"+strconv.Itoa(i), payload)}); err != nil {
			t.Fatal(err)
		}
	}
	publish(0)
	if s.ckFrames.Load() == 0 {
		t.Fatal("no WAL frames counted after a publish")
	}
	// Each publish adds the frames it appended to the WAL.
	last := int64(0)
	i := 1
	for s.ckFrames.Load()+last < checkpointFrames {
		before, counted := walFrames(t, path), s.ckFrames.Load()
		publish(i)
		i++
		last = s.ckFrames.Load() - counted
		if grew := int64(walFrames(t, path) - before); last != grew || grew == 0 {
			t.Fatalf("publish %d: %d frames counted, the WAL grew by %d", i, last, grew)
		}
		if n := s.checkpoints.Load(); n != 0 {
			t.Fatalf("a background checkpoint ran after %d frames (%d publishes), below %d", s.ckFrames.Load(), i, checkpointFrames)
		}
	}
	if n := s.checkpoints.Load(); n != 0 {
		t.Fatalf("a background checkpoint ran below %d frames", checkpointFrames)
	}
	// The publishes that take the count past checkpointFrames start one.
	deadline := time.Now().Add(10 * time.Second)
	for s.checkpoints.Load() == 0 {
		publish(i)
		i++
		if time.Now().After(deadline) {
			t.Fatalf("no background checkpoint after %d publishes (%d frames counted)", i, s.ckFrames.Load())
		}
		time.Sleep(10 * time.Millisecond) // waiting for the checkpointer; nothing to wait on
	}
}

// noteCommit wakes the checkpointer when a commit takes the frames since
// the last checkpoint to checkpointFrames, and not before.
func TestNoteCommitKicksAtCheckpointFrames(t *testing.T) {
	t.Parallel()
	s := &Store{ckKick: make(chan struct{}, 1)}
	s.noteCommit(checkpointFrames - 1)
	s.noteCommit(0)
	if len(s.ckKick) != 0 {
		t.Fatalf("kicked at %d frames", s.ckFrames.Load())
	}
	s.noteCommit(1)
	if len(s.ckKick) != 1 {
		t.Fatalf("not kicked at %d frames", s.ckFrames.Load())
	}
}
