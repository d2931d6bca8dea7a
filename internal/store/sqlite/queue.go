package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// MaxResponseBytes is how much of an attempt's response body is stored.
const MaxResponseBytes = 4 << 10

// scanDelivery reads the columns deliveryCols, then any extra ones into
// extra.
func scanDelivery(sc interface{ Scan(...any) error }, extra ...any) (*core.Delivery, error) {
	d := &core.Delivery{}
	var status string
	var next, manual, start, ct, ut int64
	if err := sc.Scan(append([]any{&d.ID, &d.EventID, &d.ProjectID, &d.WebhookID, &d.URI, &d.Dest, &d.EventType,
		&status, &d.Attempts, &next, &manual, &d.LastStatusCode, &d.LastError, &start, &ct, &ut,
		&d.LeaseOwner, &d.ScheduleBase}, extra...)...); err != nil {
		return nil, err
	}
	d.Status = core.DeliveryStatus(status)
	if status == statusLeased {
		d.Status = core.DeliveryPending
	}
	d.NextAttemptTime = fromMicros(next)
	d.Manual = manual != 0
	d.ScheduleStart, d.CreateTime, d.UpdateTime = fromMicros(start), fromMicros(ct), fromMicros(ut)
	return d, nil
}

// ClaimDeliveries implements core.DeliveryStore with one UPDATE ...
// RETURNING per queue, all in one transaction:
//
//  1. retries (queue 1) up to the retry share, a quarter of Limit (spread
//     across calls, so small batches get their share too);
//  2. first attempts (queue 0) up to what is left;
//  3. if room remains, more retries.
//
// Neither queue can starve the other, and first attempts take the rest.
// Claimed deliveries carry NextAttemptTime = the lease expiry.
func (s *Store) ClaimDeliveries(ctx context.Context, p core.ClaimParams) ([]core.Claimed, error) {
	if p.Limit <= 0 {
		return nil, nil
	}
	if p.Owner == "" || p.Lease <= 0 {
		return nil, fmt.Errorf("sqlite: claim: owner and a positive lease are required")
	}
	n := int64(p.Limit)
	c := s.claimed.Add(n) - n
	reserve := int((c+n)/4 - c/4)
	excl := jsonList(p.ExcludeDests)
	now, until := micros(p.Now), micros(p.Now.Add(p.Lease))

	var out []core.Claimed
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.sweepLeaseSpans(ctx, tx, micros(p.Now.Add(max(0, p.Lease-leaseSweepAge)))); err != nil {
			return err
		}
		out = make([]core.Claimed, 0, p.Limit)
		claim := tx.StmtContext(ctx, s.st.claim)
		take := func(queue, limit int) (int, error) {
			if limit <= 0 {
				return 0, nil
			}
			rows, err := claim.QueryContext(ctx, p.Owner, now, until, queue, excl, limit)
			if err != nil {
				return 0, err
			}
			defer rows.Close()
			got := 0
			for rows.Next() {
				d, err := scanDelivery(rows)
				if err != nil {
					return 0, err
				}
				out = append(out, core.Claimed{Delivery: *d})
				got++
			}
			return got, rows.Err()
		}
		retries, err := take(1, reserve)
		if err != nil {
			return err
		}
		if _, err := take(0, p.Limit-len(out)); err != nil {
			return err
		}
		if retries == reserve {
			if _, err := take(1, p.Limit-len(out)); err != nil {
				return err
			}
		}
		return attachPayloads(ctx, tx.StmtContext(ctx, s.st.claimPayloads), out)
	})
	if err != nil {
		return nil, wrap("claim", err)
	}
	return out, nil
}

// leaseSweepAge is how old a lease span (a publish's deliveries inserted
// leased, see leaseSpan) is when a claim sweeps it, for spans of the
// claim's lease: a claim sweeps every span that expires within its lease
// less leaseSweepAge (and every expired one, whatever the lease).
// Sweeping a span early is safe — its rows become what a leased delivery
// was before migration 0012: pending, lease owner and expiry kept, in
// deliveries_due but not due before the expiry — and cheap while its
// rows are a second old: nearly all are completed and still in the
// writer's page cache. At the expiry (a minute) they would be read from
// the file again, and the engine's claim loop would wake at every
// publish's expiry (NextDueTime) instead of at its poll.
const leaseSweepAge = time.Second

// sweepLeaseSpans makes pending the rows still 'leased' in the spans that
// expire at or before through, and deletes those spans. The rows are
// those of one id range, from the smallest first to the largest last id
// of the spans: the spans of about a second of publishes, whose ids are
// of that second; a 'leased' row of a later span in that range is swept
// early, which is safe (see leaseSweepAge).
func (s *Store) sweepLeaseSpans(ctx context.Context, tx *sql.Tx, through int64) error {
	var first, last sql.NullString
	if err := tx.StmtContext(ctx, s.st.spanBounds).QueryRowContext(ctx, through).Scan(&first, &last); err != nil {
		return err
	}
	if !first.Valid {
		return nil
	}
	if _, err := tx.StmtContext(ctx, s.st.spanRows).ExecContext(ctx, first.String, last.String); err != nil {
		return err
	}
	_, err := tx.StmtContext(ctx, s.st.spanDelete).ExecContext(ctx, through)
	return err
}

// attachPayloads reads the events of the claimed deliveries in one query.
func attachPayloads(ctx context.Context, q *sql.Stmt, cs []core.Claimed) error {
	if len(cs) == 0 {
		return nil
	}
	ids := make([]string, 0, len(cs))
	seen := make(map[string]bool, len(cs))
	for _, c := range cs {
		if !seen[c.EventID] {
			seen[c.EventID] = true
			ids = append(ids, c.EventID)
		}
	}
	type ev struct {
		payload []byte
		subject string
		dynamic *core.WebhookConfig
		trace   string
	}
	evs := make(map[string]*ev, len(ids))
	rows, err := q.QueryContext(ctx, jsonList(ids))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var dyn []byte
		e := &ev{}
		if err := rows.Scan(&id, &e.payload, &e.subject, &dyn, &e.trace); err != nil {
			return err
		}
		if e.dynamic, err = decodeDynamic(dyn); err != nil {
			return err
		}
		evs[id] = e
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for i := range cs {
		if e := evs[cs[i].EventID]; e != nil {
			cs[i].Payload, cs[i].Subject, cs[i].Dynamic = e.payload, e.subject, e.dynamic
			cs[i].TraceParent = e.trace
		}
	}
	return nil
}

// runAgg accumulates one webhook's attempts within a CompleteDeliveries
// batch.
type runAgg struct {
	lastSuccess int64 // latest successful attempt time, 0 if none
	failures    []int64
}

// CompleteDeliveries implements core.DeliveryStore. Each completion
// records its attempt (none when Attempt.Number is 0: the delivery was
// closed without sending); it updates the delivery only while Owner still
// holds the lease. A success without an error whose lease is held keeps
// its attempt in the delivery row (inline_attempt and the columns beside
// it, migration 0010), any other attempt is a row of attempts. Failure runs are folded per webhook (one UPDATE per
// distinct webhook): failures after the batch's last success extend the
// run (or start a new one after that success); a success later than every
// failure ends it.
func (s *Store) CompleteDeliveries(ctx context.Context, cs []core.Completion) error {
	if len(cs) == 0 {
		return nil
	}
	runs := map[string]*runAgg{}
	var order []string
	disable := map[string]int64{} // webhook id → time of the attempt that disables it
	for _, c := range cs {
		if !c.Status.Valid() {
			return fmt.Errorf("sqlite: complete %s: invalid status %q", c.DeliveryID, c.Status)
		}
		if c.WebhookID == "" || c.Attempt.Number == 0 {
			continue // no webhook, or no attempt: the failure run is unchanged
		}
		r := runs[c.WebhookID]
		if r == nil {
			r = &runAgg{}
			runs[c.WebhookID] = r
			order = append(order, c.WebhookID)
		}
		at := micros(attemptTime(c))
		if c.Success {
			r.lastSuccess = max(r.lastSuccess, at)
		} else {
			r.failures = append(r.failures, at)
		}
		if c.DisableWebhook {
			disable[c.WebhookID] = max(disable[c.WebhookID], at)
		}
	}
	sort.Strings(order)

	if !claimedCounts(cs) {
		return wrap("complete", s.inRawTx(ctx, func(tx *rawTx) error { return completeEach(tx, cs, order, runs, disable) }))
	}
	err := s.inRawTx(ctx, func(tx *rawTx) error { return completeTx(tx, cs, inlineAttempts, order, runs, disable) })
	if errors.Is(err, errLeaseLost) {
		// A completion found its lease gone, or its delivery's attempt
		// count moved since the claim (another holder's attempt was
		// recorded meanwhile): the transaction is rolled back and run
		// again one completion at a time, numbering each attempt from
		// its delivery's count.
		err = s.inRawTx(ctx, func(tx *rawTx) error { return completeEach(tx, cs, order, runs, disable) })
	}
	return wrap("complete", err)
}

// claimedCounts reports whether completeTx may apply cs: every completion
// has a lease owner. completeTx's statements update a delivery only if
// its lease is held and its attempt count is the one the completion's
// attempt was numbered from (Number-1), and it returns errLeaseLost if
// one did not — a lease lost, or a delivery twice in cs (the first
// completion releases the lease).
func claimedCounts(cs []core.Completion) bool {
	for i := range cs {
		if cs[i].Owner == "" {
			return false
		}
	}
	return true
}

// completeEach is CompleteDeliveries' transaction when some completion
// cannot be applied as numbered (see claimedCounts): one completion at a
// time, each attempt takes the next number of its delivery's attempt
// count, which counts it whether or not the lease is still held, and the
// outcome is applied if it is (a success kept in the row as completeTx
// keeps it).
func completeEach(tx *rawTx, cs []core.Completion, order []string, runs map[string]*runAgg,
	disable map[string]int64) error {
	read, err := tx.st.prepare(tx.ctx, `SELECT attempts, lease_owner, status IN `+pendingSQL+`
		FROM deliveries WHERE id = ?`)
	if err != nil {
		return err
	}
	defer func() { _ = read.Close() }()
	bump, err := tx.st.prepare(tx.ctx, `UPDATE deliveries SET attempts = attempts + 1 WHERE id = ?`)
	if err != nil {
		return err
	}
	defer func() { _ = bump.Close() }()
	for _, c := range cs {
		a := c.Attempt
		if len(a.Response) > MaxResponseBytes {
			a.Response = a.Response[:MaxResponseBytes]
		}
		var count int64
		var owner string
		var pending bool
		row, err := tx.queryRow(read, c.DeliveryID)
		found := err == nil
		switch {
		case errors.Is(err, sql.ErrNoRows): // deleted: its attempt is recorded as numbered
		case err != nil:
			return err
		default:
			if err := row.Scan(&count, &owner, &pending); err != nil {
				return err
			}
		}
		held := found && c.Owner != "" && owner == c.Owner && pending
		if a.Number != 0 && found {
			a.Number = int(count) + 1
		}
		attempts := newShortFull(tx, "attempts", plainAttemptCols, famPlainAttempts, attemptInsertCols, famAttempts)
		complete := newShortFull(tx, "complete", succeedCols, famSucceed, completeCols, famComplete)
		cc := c
		if !held {
			cc.Owner = "" // the attempt alone
		}
		if held && inlineAttempts && inlineable(c) {
			inl := newRowInserter(tx, "complete", inlineCols, famInline)
			inl.shared, inl.sharedLast = []any{c.Owner}, true
			var resp any
			if len(a.Response) > 0 {
				resp = a.Response
			}
			if err := inl.add(a.StatusCode, micros(attemptTime(c)), a.Number, a.URI, int64(a.Latency), resp,
				c.DeliveryID); err != nil {
				return err
			}
			if err := inl.flush(); err != nil {
				return err
			}
			continue
		}
		if err := addCompletion(&attempts, &complete, &cc, &a, attemptTime(c)); err != nil {
			return err
		}
		for _, ins := range []shortFull{attempts, complete} {
			if err := ins.flush(); err != nil {
				return err
			}
		}
		if !held && a.Number != 0 && found {
			if err := tx.exec(bump, c.DeliveryID); err != nil {
				return err
			}
		}
	}
	if err := writeRuns(tx, order, runs, disable); err != nil {
		return err
	}
	return addStats(tx, core.FoldCompleted(cs))
}

// errLeaseLost aborts a completion transaction when one of its
// deliveries was not updated (see claimedCounts).
var errLeaseLost = errors.New("sqlite: complete: a lease was not held")

// completeTx is CompleteDeliveries' transaction for completions that
// claimedCounts accepts. With inline, the successes that can be kept in
// their delivery rows (inlineable) are written by inlineManySQL, without
// a row of attempts. If any completion does not update its row, it
// returns errLeaseLost.
func completeTx(tx *rawTx, cs []core.Completion, inline bool, order []string, runs map[string]*runAgg,
	disable map[string]int64) error {
	attempts := newShortFull(tx, "attempts", plainAttemptCols, famPlainAttempts, attemptInsertCols, famAttempts)
	complete := newShortFull(tx, "complete", succeedCols, famSucceed, completeCols, famComplete)
	var changed int
	complete.short.changed, complete.full.changed = &changed, &changed
	var inls []*rowInserter // by lease owner
	for _, c := range cs {
		a := c.Attempt
		if len(a.Response) > MaxResponseBytes {
			a.Response = a.Response[:MaxResponseBytes]
		}
		at := attemptTime(c)
		if inline && inlineable(c) {
			var inl *rowInserter
			for _, ins := range inls {
				if ins.shared[0] == any(c.Owner) {
					inl = ins
					break
				}
			}
			if inl == nil {
				inl = newRowInserter(tx, "complete", inlineCols, famInline)
				inl.changed, inl.shared, inl.sharedLast = &changed, []any{c.Owner}, true
				inls = append(inls, inl)
			}
			var resp any // NULL for none: binds without a copy into C memory
			if len(a.Response) > 0 {
				resp = a.Response
			}
			if err := inl.add(a.StatusCode, micros(at), a.Number, a.URI, int64(a.Latency), resp, c.DeliveryID); err != nil {
				return err
			}
			continue
		}
		if err := addCompletion(&attempts, &complete, &c, &a, at); err != nil {
			return err
		}
	}
	for _, inl := range inls {
		if err := inl.flush(); err != nil {
			return err
		}
	}
	for _, ins := range []shortFull{attempts, complete} {
		if err := ins.flush(); err != nil {
			return err
		}
	}
	if changed != len(cs) {
		return errLeaseLost
	}
	if err := writeRuns(tx, order, runs, disable); err != nil {
		return err
	}
	return addStats(tx, core.FoldCompleted(cs))
}

// addCompletion adds c, whose attempt a (its response cut) was made at
// at, to the rows of attempts (its attempt, if one was made) and of
// complete (its delivery's update, if it has an owner).
func addCompletion(attempts, complete *shortFull, c *core.Completion, a *core.Attempt, at time.Time) error {
	attempted := a.Number != 0
	var err error
	switch {
	case !attempted:
	case shortRows && a.Error == "" && len(a.Response) == 0:
		err = attempts.short.add(c.DeliveryID, a.Number, micros(at), a.URI, a.StatusCode, int64(a.Latency))
	default:
		err = attempts.full.add(c.DeliveryID, a.Number, micros(at), a.URI,
			a.StatusCode, int64(a.Latency), a.Error, orEmpty(a.Response))
	}
	if err != nil {
		return err
	}
	if c.Owner == "" {
		return nil // no lease can match
	}
	next := c.NextAttemptTime
	if c.Status != core.DeliveryPending {
		next = time.Time{}
	}
	if shortRows && c.Status == core.DeliverySucceeded && attempted && a.Error == "" {
		return complete.short.add(a.StatusCode, micros(at), c.DeliveryID, c.Owner, a.Number)
	}
	return complete.full.add(string(c.Status), micros(next), a.StatusCode,
		a.Error, micros(at), c.DeliveryID, c.Owner, a.Number)
}

// writeRuns folds the failure runs of the webhooks in order (sorted ids)
// and disables those in disable.
func writeRuns(tx *rawTx, order []string, runs map[string]*runAgg, disable map[string]int64) error {
	if len(order) > 0 {
		for _, id := range order {
			reset, count, earliest := runs[id].fold()
			if !reset && count == 0 {
				continue
			}
			if err := tx.exec(tx.st.failureRun, reset, count, earliest, id); err != nil {
				return fmt.Errorf("failure run %s: %w", id, err)
			}
		}
	}
	if len(disable) > 0 {
		for _, id := range order {
			at, ok := disable[id]
			if !ok {
				continue
			}
			if err := tx.exec(tx.st.disableWebhook, at, id); err != nil {
				return fmt.Errorf("disable webhook %s: %w", id, err)
			}
		}
	}
	return nil
}

// inlineAttempts keeps the attempt that ends a delivery successfully in
// the delivery row (see inlineCandidates). Tests turn it off to compare.
var inlineAttempts = true

// inlineable reports whether c's attempt is kept in its delivery row
// when its lease is held: a success with an attempt, no error, an owner
// and a URI (an empty inline_uri means the delivery's uri).
func inlineable(c core.Completion) bool {
	return c.Status == core.DeliverySucceeded && c.Attempt.Number != 0 && c.Attempt.Error == "" &&
		c.Owner != "" && c.Attempt.URI != ""
}

// fold returns whether the webhook's run restarts (a success was seen),
// how many failures follow the last success, and the earliest of them.
func (r *runAgg) fold() (reset bool, count int, earliest int64) {
	reset = r.lastSuccess != 0
	for _, f := range r.failures {
		if reset && f < r.lastSuccess {
			continue
		}
		count++
		if earliest == 0 || f < earliest {
			earliest = f
		}
	}
	return reset, count, earliest
}

func attemptTime(c core.Completion) time.Time {
	if c.Attempt.Time.IsZero() {
		return time.Now().UTC()
	}
	return c.Attempt.Time
}

// ReleaseDeliveries implements core.DeliveryStore: the deliveries become
// due again at the time they were claimed.
func (s *Store) ReleaseDeliveries(ctx context.Context, owner string, ids []string) error {
	if len(ids) == 0 || owner == "" {
		return nil
	}
	_, err := s.w.ExecContext(ctx,
		`UPDATE deliveries SET status = 'pending', lease_owner = '', next_attempt_time = lease_time, lease_time = 0
		 WHERE id IN (SELECT value FROM json_each(?)) AND lease_owner = ? AND status IN `+pendingSQL,
		jsonList(ids), owner)
	if err == nil {
		s.signal()
	}
	return wrap("release", err)
}

// NextDueTime implements core.DeliveryStore. Leased deliveries carry
// their lease expiry in next_attempt_time, so one minimum per queue
// (two index probes) covers both cases; deliveries inserted leased
// ('leased', outside the index) are due at their lease span's expiry,
// when a claim sweeps them (a third probe).
func (s *Store) NextDueTime(ctx context.Context) (time.Time, bool, error) {
	var v sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT min(t) FROM (
		SELECT min(next_attempt_time) AS t FROM deliveries WHERE status = 'pending' AND queue = 0
		UNION ALL
		SELECT min(next_attempt_time) FROM deliveries WHERE status = 'pending' AND queue = 1
		UNION ALL
		SELECT min(expire) FROM lease_spans)`).Scan(&v)
	if err != nil {
		return time.Time{}, false, wrap("next due time", err)
	}
	if !v.Valid {
		return time.Time{}, false, nil
	}
	return fromMicros(v.Int64), true, nil
}

// QueueDepth implements core.DeliveryStore by counting the covering
// index deliveries_due (linear in the number of pending deliveries), and
// the deliveries inserted leased ('leased', all due) in the range of
// the lease spans not yet swept (linear in the deliveries published
// since the oldest, about a second's while an engine claims).
func (s *Store) QueueDepth(ctx context.Context, now time.Time) (core.QueueDepth, error) {
	var due, total, leased int
	err := s.r.QueryRowContext(ctx, `SELECT
		count(*) FILTER (WHERE next_attempt_time <= ?1 OR lease_owner != ''), count(*),
		(SELECT count(*) FROM deliveries WHERE id >= (SELECT min(first) FROM lease_spans)
			AND id <= (SELECT max(last) FROM lease_spans) AND status = '`+statusLeased+`')
		FROM deliveries INDEXED BY deliveries_due WHERE status = 'pending'`, micros(now)).Scan(&due, &total, &leased)
	if err != nil {
		return core.QueueDepth{}, wrap("queue depth", err)
	}
	return core.QueueDepth{Due: due + leased, Scheduled: total - due}, nil
}
