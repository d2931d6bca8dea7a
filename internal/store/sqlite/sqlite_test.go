package sqlite_test

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/store/sqlite"
	"github.com/longhook/longhook/internal/store/storetest"
)

func newStore(t testing.TB) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "longhook.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) core.Store { return newStore(t) })
}

// TestDeferredReopen closes and reopens one file between leased
// publishes and their completions (storetest.RunDeferredReopen).
func TestDeferredReopen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "longhook.db")
	storetest.RunDeferredReopen(t, func(t *testing.T) core.Store {
		s, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

func BenchmarkStore(b *testing.B) {
	storetest.RunBenchmarks(b, func(b *testing.B) core.Store { return newStore(b) })
}

func TestMigrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "dir", "longhook.db") // directories are created
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	applied, pending, err := s.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) == 0 || applied[0] != "0001_init" || len(pending) != 0 {
		t.Errorf("MigrationStatus = %v, %v", applied, pending)
	}
	p := storetest.NewProject()
	if err := s.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopening applies nothing twice and keeps the data.
	s, err = sqlite.OpenWithOptions(ctx, path, sqlite.Options{Synchronous: "FULL", ReadConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	again, _, err := s.MigrationStatus(ctx)
	if err != nil || !slices.Equal(again, applied) {
		t.Errorf("after reopen: %v, %v; want %v", again, err, applied)
	}
	if _, err := s.GetProject(ctx, p.ID); err != nil {
		t.Errorf("data lost across reopen: %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	_, err := sqlite.OpenWithOptions(context.Background(), filepath.Join(t.TempDir(), "x.db"),
		sqlite.Options{Synchronous: "OFF"})
	if err == nil {
		t.Fatal("synchronous=OFF accepted")
	}
}

// TestTwoStoresOneFile opens one new file from two stores at once (as two
// processes would): migrations apply once, and the lease has one holder.
func TestTwoStoresOneFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	stores := make([]*sqlite.Store, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = sqlite.Open(ctx, path) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		defer stores[i].Close()
	}

	now := storetest.T0
	var mu sync.Mutex
	wins := map[string]int{}
	for round := range 20 {
		at := now.Add(time.Duration(round) * time.Minute) // each round starts after the last lease expired
		for i, s := range stores {
			wg.Go(func() {
				owner := []string{"a", "b"}[i]
				ok, err := s.AcquireLease(ctx, "leader", owner, at, 30*time.Second)
				if err != nil {
					t.Errorf("AcquireLease: %v", err)
					return
				}
				if ok {
					mu.Lock()
					wins[at.String()]++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	if len(wins) != 20 {
		t.Errorf("%d rounds had a winner, want 20", len(wins))
	}
	for round, n := range wins {
		if n != 1 {
			t.Errorf("round %s: %d holders", round, n)
		}
	}
}
