package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestClaimPlan checks that claims, NextDueTime and QueueDepth read the
// partial covering index in due order, so scheduled rows cost nothing.
func TestClaimPlan(t *testing.T) {
	t.Parallel()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "plan.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	plan := func(query string, args ...any) string {
		t.Helper()
		rows, err := s.w.Query("EXPLAIN QUERY PLAN "+query, args...)
		if err != nil {
			t.Fatalf("explain: %v", err)
		}
		defer rows.Close()
		var b strings.Builder
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			b.WriteString(detail + "\n")
		}
		return b.String()
	}
	claim := plan(claimSQL, "o", 1, 2, 0, "[]", 10)
	for _, want := range []string{
		"SEARCH deliveries USING COVERING INDEX deliveries_due (queue=? AND next_attempt_time<?)",
		"SEARCH deliveries USING INTEGER PRIMARY KEY (rowid=?)",
	} {
		if !strings.Contains(claim, want) {
			t.Errorf("claim plan lacks %q:\n%s", want, claim)
		}
	}
	t.Logf("claim plan:\n%s", claim)
	if strings.Contains(claim, "TEMP B-TREE FOR ORDER BY") {
		t.Errorf("claim sorts instead of reading the index in order:\n%s", claim)
	}
	next := plan(`SELECT min(next_attempt_time) FROM deliveries WHERE status = 'pending' AND queue = 0`)
	if !strings.Contains(next, "deliveries_due") {
		t.Errorf("NextDueTime plan does not use deliveries_due:\n%s", next)
	}

	// The retention sweep ranges over the primary keys (ids sort by
	// creation time); no index on create_time is kept for it.
	for _, q := range []string{
		`SELECT id FROM deliveries WHERE id < 'msg_1' AND create_time < 1 AND status != 'pending' ORDER BY id LIMIT 10`,
		`SELECT e.id FROM events e WHERE e.id < '1' AND e.create_time < 1 ORDER BY e.id LIMIT 10`,
	} {
		p := plan(q)
		if !strings.Contains(p, "(id<?)") || strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("sweep plan does not range over the primary key:\n%s\n%s", q, p)
		}
	}

	// The lease spans' sweep and QueueDepth's count of 'leased' rows
	// range over the deliveries' primary key, the spans over theirs.
	for _, q := range []string{
		`UPDATE OR FAIL deliveries SET status = 'pending' WHERE id >= 'a' AND id <= 'b' AND status = 'leased'`,
		`SELECT count(*) FROM deliveries WHERE id >= (SELECT min(first) FROM lease_spans)
			AND id <= (SELECT max(last) FROM lease_spans) AND status = 'leased'`,
	} {
		if p := plan(q); !strings.Contains(p, "sqlite_autoindex_deliveries_1 (id>? AND id<?)") {
			t.Errorf("lease span plan does not range over the primary key:\n%s\n%s", q, p)
		}
	}
	if p := plan(`SELECT min(first), max(last) FROM lease_spans WHERE expire <= 1`); !strings.Contains(p, "PRIMARY KEY (expire<?)") {
		t.Errorf("lease span bounds do not range over the spans' key:\n%s", p)
	}

	// A batch of completions looks each delivery up by id.
	args := make([]any, 0, 8*insertBatch)
	for range insertBatch {
		args = append(args, "succeeded", 0, 200, "", 1, "msg_x", "o", true)
	}
	if p := plan(completeManySQL(insertBatch), args...); !strings.Contains(p, "sqlite_autoindex_deliveries_1 (id=?)") {
		t.Errorf("completeMany does not look deliveries up by id:\n%s", p)
	} else {
		t.Logf("completeMany plan:\n%s", p)
	}
	args = args[:0]
	for range insertBatch {
		args = append(args, 200, 1, 1, "https://x", 1000, []byte{}, "msg_x", "o")
	}
	if p := plan(inlineManySQL(insertBatch), args...); !strings.Contains(p, "sqlite_autoindex_deliveries_1 (id=?)") {
		t.Errorf("inlineMany does not look deliveries up by id:\n%s", p)
	}
}
