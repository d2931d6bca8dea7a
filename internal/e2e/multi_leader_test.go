package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/pgtest"
)

// leaderTTL is the leadership lease with --time-scale 600: the
// maintenance interval is 30 s / 600 = 50 ms and the lease max(3 × 50 ms,
// 1 s) = 1 s (internal/leader).
const leaderTTL = time.Second

// leaderTakeover bounds the wait for a new leader after a kill: one lease
// (1 s) plus a generous margin for a loaded machine, where three serve
// processes, PostgreSQL and the race-instrumented test share two CPUs (the
// time taken is logged; a quiet machine takes about a lease).
const leaderTakeover = 10 * time.Second

// TestLeadership: three instances with --time-scale 600 elect one
// maintenance leader on the "maintenance" lease row. The leader is killed
// with SIGKILL, twice in a row; each time another instance takes over
// within one lease period plus a margin, and at no moment are there two
// leaders: neither in the leases table (sampled every few milliseconds)
// nor in the instances' own maintenance.leadership log records.
func TestLeadership(t *testing.T) {
	t.Parallel()
	dbURL := newTestDatabase(t, pgtest.URL(t))
	procs := startCluster(t, 3, dbURL, "--time-scale", "600")
	smp := startLeaseSampler(t, dbURL)

	// killedAt is when each killed instance was known dead (reaped).
	killedAt := map[*serveProc]time.Time{}
	leaderOf := func(owner string) *serveProc {
		if owner == "" {
			return nil
		}
		for _, s := range procs {
			if _, dead := killedAt[s]; !dead && strings.Contains(s.Logs(), "leader=true owner="+owner) {
				return s
			}
		}
		return nil
	}
	var leader *serveProc
	var owner string
	pollUntil(t, 15*time.Second, 10*time.Millisecond, "a leader in the table and in its log", func() (bool, string) {
		last := smp.latest()
		owner, leader = last.owner, leaderOf(last.owner)
		return leader != nil, fmt.Sprintf("table owner %q, sampling error %v", last.owner, smp.firstErr())
	})
	for kill := 1; kill <= 2; kill++ {
		// The leader renews: its expire_time moves on, round after round.
		renewed := smp.latest().expire
		pollUntil(t, leaderTakeover, 10*time.Millisecond, "the leader renewing its lease", func() (bool, string) {
			last := smp.latest()
			return last.owner == owner && last.expire.After(renewed.Add(100*time.Millisecond)),
				fmt.Sprintf("owner %q expiring %v, sampling error %v", last.owner, last.expire, smp.firstErr())
		})
		leader.kill9()
		killTime := time.Now()
		killedAt[leader] = killTime
		old := owner
		pollUntil(t, leaderTakeover, 5*time.Millisecond, "a new leader after kill -9 of the old one", func() (bool, string) {
			last := smp.latest()
			owner, leader = last.owner, nil
			if owner != old {
				leader = leaderOf(owner)
			}
			return leader != nil, fmt.Sprintf("table owner %q, sampling error %v", owner, smp.firstErr())
		})
		t.Logf("kill -9 #%d of leader %s: %s took over %v later", kill, old, owner, time.Since(killTime).Round(time.Millisecond))
	}
	samples, err := smp.stop()
	if err != nil {
		t.Fatalf("sampling the leases table: %v", err)
	}

	// The table: once someone was elected there is always exactly one
	// row, and every handover honours the lease. The database only lets
	// Y acquire when X's expire_time <= Y's now, and a renewal only moves
	// expire_time later; so the first expire_time seen for Y, minus the
	// TTL, is at or after Y's acquisition, which is at or after the last
	// expire_time seen for X. Timestamps are microseconds in the database
	// and the TTL is whole microseconds, so the comparison is exact. A
	// violation means Y was granted the lease while X's was still valid.
	// The logs agree: the successor logs leader=true only after the old
	// lease ran out (the log's milliseconds are truncated, hence the 1 ms).
	ledAt := map[string][]time.Time{} // owner → its leader=true records
	for i, p := range procs {
		recs, err := leadershipRecords(p.Logs())
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
		for _, r := range recs {
			if r.leader {
				ledAt[r.owner] = append(ledAt[r.owner], r.at)
			}
		}
	}
	var handovers int
	elected := false
	for i, s := range samples {
		if s.rows > 0 {
			elected = true
		}
		if elected && s.rows != 1 {
			t.Fatalf("sample %d at %v: %d maintenance lease rows, want exactly 1", i, s.at.Format(time.RFC3339Nano), s.rows)
		}
		if i == 0 || s.rows == 0 || samples[i-1].rows == 0 || s.owner == samples[i-1].owner {
			continue
		}
		handovers++
		prev := samples[i-1]
		if acquired := s.expire.Add(-leaderTTL); acquired.Before(prev.expire) {
			t.Errorf("lease handed from %s to %s at %v while the old lease ran until %v: two leaders at once",
				prev.owner, s.owner, acquired.Format(time.RFC3339Nano), prev.expire.Format(time.RFC3339Nano))
		}
		for _, at := range ledAt[s.owner] {
			if at.Before(prev.at.Truncate(time.Millisecond)) {
				continue // an earlier term of the same owner
			}
			if at.Add(time.Millisecond).Before(prev.expire) {
				t.Errorf("%s logged leader=true at %v while %s's lease ran until %v",
					s.owner, at.Format(time.RFC3339Nano), prev.owner, prev.expire.Format(time.RFC3339Nano))
			}
			break
		}
	}
	if handovers < 2 {
		t.Errorf("%d leadership handovers seen in the table, want at least the 2 kills", handovers)
	}
	if handovers > 2 {
		t.Logf("%d handovers for 2 kills: a leader missed a renewal (a loaded machine) and lost the lease", handovers)
	}
	checkLeaderLogs(t, procs, killedAt, time.Now())
}

// checkLeaderLogs checks the instances' maintenance.leadership records.
//
// Each instance believes it leads from a leader=true record until its
// next leader=false record; a killed instance until it was killed; a live
// one until now. These beliefs may overlap legitimately: an instance that
// lost the lease only notices (and logs leader=false) at its next round,
// when its renewal fails. Its lease had ended before the successor could
// acquire it, so the overlap is the time between the end of its lease and
// its next round, which is below one lease TTL as long as its rounds
// (every 50 ms) are not stalled for longer than that. An overlap longer
// than the TTL therefore means two instances acted as leaders at once,
// and that is the assertion; log timestamps have millisecond precision and
// the instances share the machine's clock.
func checkLeaderLogs(t *testing.T, procs []*serveProc, killedAt map[*serveProc]time.Time, now time.Time) {
	t.Helper()
	type interval struct {
		proc       int
		from, till time.Time
	}
	var all []interval
	for i, s := range procs {
		end := now
		if k, ok := killedAt[s]; ok {
			end = k
		}
		recs, err := leadershipRecords(s.Logs())
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
		var open *interval
		for _, r := range recs {
			switch {
			case r.leader && open == nil:
				open = &interval{proc: i, from: r.at}
			case !r.leader && open != nil:
				open.till = r.at
				all = append(all, *open)
				open = nil
			default:
				t.Errorf("instance %d: leader=%v at %v twice in a row", i, r.leader, r.at.Format(time.RFC3339Nano))
			}
		}
		if open != nil {
			open.till = end
			all = append(all, *open)
		}
	}
	if len(all) < 3 {
		t.Errorf("%d leadership intervals in the logs, want at least 3 (a first leader and two successors)", len(all))
	}
	for i, a := range all {
		for _, b := range all[i+1:] {
			if a.proc == b.proc {
				continue
			}
			overlap := earlier(a.till, b.till).Sub(later(a.from, b.from))
			if overlap > leaderTTL {
				t.Errorf("instances %d and %d both logged leader=true for %v (%v–%v and %v–%v), more than the %v lease",
					a.proc, b.proc, overlap, a.from.Format(time.RFC3339Nano), a.till.Format(time.RFC3339Nano),
					b.from.Format(time.RFC3339Nano), b.till.Format(time.RFC3339Nano), leaderTTL)
			}
		}
	}
}

// earlier returns the earlier of two times.
func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// later returns the later of two times.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// leadershipRecord is one maintenance.leadership log record.
type leadershipRecord struct {
	at     time.Time
	leader bool
	owner  string
}

// leadershipLine matches serve's text-format record (log/slog's
// TextHandler: time first, millisecond precision).
var leadershipLine = regexp.MustCompile(`(?m)^time=(\S+) level=\S+ msg=maintenance\.leadership leader=(true|false) owner=(\S+)$`)

// leadershipRecords parses every maintenance.leadership record in logs.
func leadershipRecords(logs string) ([]leadershipRecord, error) {
	var out []leadershipRecord
	for _, m := range leadershipLine.FindAllStringSubmatch(logs, -1) {
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			return nil, err
		}
		out = append(out, leadershipRecord{at: at, leader: m[2] == "true", owner: m[3]})
	}
	return out, nil
}

// leaseSample is the maintenance lease row at one moment.
type leaseSample struct {
	at     time.Time
	rows   int
	owner  string
	expire time.Time
}

// leaseSampler reads the maintenance lease row every few milliseconds on
// a connection of its own, until stop.
type leaseSampler struct {
	mu      sync.Mutex
	samples []leaseSample
	err     error
	cancel  context.CancelFunc
	done    chan struct{}
}

// startLeaseSampler starts sampling dbURL's leases table.
func startLeaseSampler(t *testing.T, dbURL string) *leaseSampler {
	conn := connectPG(t, dbURL)
	ctx, cancel := context.WithCancel(context.Background())
	s := &leaseSampler{cancel: cancel, done: make(chan struct{})}
	t.Cleanup(func() { _, _ = s.stop() })
	go func() {
		defer close(s.done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			smp, err := sampleLease(ctx, conn)
			if ctx.Err() != nil {
				return
			}
			s.mu.Lock()
			if err != nil && s.err == nil {
				s.err = err
			}
			if err == nil {
				s.samples = append(s.samples, smp)
			}
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// sampleLease reads the maintenance lease rows (at most one: name is the
// primary key; counting them still catches a broken schema).
func sampleLease(ctx context.Context, conn *pgx.Conn) (leaseSample, error) {
	s := leaseSample{at: time.Now()}
	rows, err := conn.Query(ctx, `SELECT owner, expire_time FROM leases WHERE name = 'maintenance'`)
	if err != nil {
		return s, err
	}
	for rows.Next() {
		s.rows++
		if err := rows.Scan(&s.owner, &s.expire); err != nil {
			return s, err
		}
	}
	return s, rows.Err()
}

// firstErr returns the first query error so far (nil if none).
func (s *leaseSampler) firstErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// latest returns the last sample (zero before the first).
func (s *leaseSampler) latest() leaseSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) == 0 {
		return leaseSample{}
	}
	return s.samples[len(s.samples)-1]
}

// stop ends sampling and returns the samples and the first query error.
// It is safe to call twice.
func (s *leaseSampler) stop() ([]leaseSample, error) {
	s.cancel()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples, s.err
}
