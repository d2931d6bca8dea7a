package console_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/console"
	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/procstat"
	"github.com/longhook/longhook/internal/publish"
	"github.com/longhook/longhook/internal/secretbox"
	"github.com/longhook/longhook/internal/store/sqlite"
	"github.com/longhook/longhook/internal/store/storetest"
)

// benchDeliveries is the size of the big store: deliveries spread over the
// 30 days of the default retention, 20 webhooks, two deliveries per event.
const (
	benchDeliveries = 1_000_000
	benchHooks      = 20
	benchDays       = 30
	benchDBVersion  = "v3"
)

// BenchmarkConsolePages renders every console page (server-side, the whole
// handler: session check, store reads, template) against a SQLite store of
// 1,000,000 deliveries and reports p50 and p99 per page. The store is built
// once (a few minutes) and kept in the temp directory between runs.
//
//	go test -run '^$' -bench ConsolePages -benchtime 200x ./internal/console/
func BenchmarkConsolePages(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(os.TempDir(), "longhook-console-bench-"+benchDBVersion+".db")
	fix := buildBenchStore(b, path)
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	box, err := secretbox.New(make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	h := api.NewServer(api.Deps{Store: st, Cipher: box, Console: func(a http.Handler) http.Handler {
		return console.New(console.Deps{API: a, Store: st, Publisher: nopPublisher{}, Catalog: mustCatalog(b), Jobs: st})
	}})
	cookie := benchSignIn(b, h, fix.key)

	day := time.Now().UTC().Add(-36 * time.Hour).Format("2006-01-02T15:04")
	pages := []struct{ name, path string }{
		{"overview", "/console/"},
		{"webhooks", "/console/webhooks"},
		{"webhook", "/console/webhooks/" + fix.hook},
		{"webhook_failed", "/console/webhooks/" + fix.hook + "?status=failed"},
		{"webhook_range", "/console/webhooks/" + fix.hook + "?since=" + url.QueryEscape(day) + "&until=" + url.QueryEscape(time.Now().UTC().Add(-24*time.Hour).Format("2006-01-02T15:04"))},
		{"webhook_older", "/console/webhooks/" + fix.hook + "?before=" + fix.midDelivery},
		{"delivery", "/console/deliveries/" + fix.delivery},
		{"event", "/console/events?id=" + fix.event},
		{"events_type", "/console/events?type=batch.failed"},
		{"events_hour", "/console/events?since=" + url.QueryEscape(day)},
		{"jobs", "/console/jobs"},
		{"admin", "/console/admin"},
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			cpu0 := procstat.CPUTime()
			for b.Loop() {
				req := httptest.NewRequest("GET", p.path, nil)
				req.AddCookie(cookie)
				rec := httptest.NewRecorder()
				start := time.Now()
				h.ServeHTTP(rec, req)
				lat = append(lat, time.Since(start))
				if rec.Code != http.StatusOK {
					b.Fatalf("GET %s: %d\n%s", p.path, rec.Code, rec.Body.String())
				}
			}
			// CPU time per page: what the page costs, which a busy shared
			// machine does not inflate the way it inflates wall time.
			b.ReportMetric(float64((procstat.CPUTime()-cpu0).Microseconds())/1000/float64(len(lat)), "cpu-ms/op")
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds())/1000, "p99-ms")
		})
	}
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, string, []publish.Input) ([]publish.Result, error) {
	return nil, nil
}

func mustCatalog(b testing.TB) *core.Catalog {
	c, err := core.NewCatalog()
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// benchSignIn signs in through the handler and returns the session cookie.
func benchSignIn(b testing.TB, h http.Handler, key string) *http.Cookie {
	req := httptest.NewRequest("POST", "/console/signin", strings.NewReader(url.Values{"key": {key}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://example.com")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.Name == "longhook_console" {
			return c
		}
	}
	b.Fatalf("sign-in: %d %s", rec.Code, rec.Body.String())
	return nil
}

// benchFixture names what the pages open.
type benchFixture struct {
	key, hook, delivery, midDelivery, event string
}

// buildBenchStore fills path with the big store unless it exists, and
// returns the fixture's names (kept in a side table).
func buildBenchStore(b testing.TB, path string) benchFixture {
	ctx := context.Background()
	if _, err := os.Stat(path); err == nil {
		return readFixture(b, path)
	}
	tmp := path + ".building"
	_ = os.Remove(tmp)
	st, err := sqlite.Open(ctx, tmp)
	if err != nil {
		b.Fatal(err)
	}
	p := storetest.NewProject()
	if err := st.CreateProject(ctx, p); err != nil {
		b.Fatal(err)
	}
	k, raw := storetest.NewAPIKey(p.ID)
	k.Admin = true
	if err := st.CreateAPIKey(ctx, k); err != nil {
		b.Fatal(err)
	}
	var hooks []string
	for range benchHooks {
		w := storetest.NewWebhook(p.ID)
		if err := st.CreateWebhook(ctx, w); err != nil {
			b.Fatal(err)
		}
		hooks = append(hooks, w.ID)
	}
	st.Close()

	db, err := sql.Open("sqlite", tmp+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	start := now.Add(-benchDays * 24 * time.Hour)
	step := benchDays * 24 * time.Hour / benchDeliveries
	rows := newBulk(tx, "deliveries", "id, event_id, project_id, webhook_id, dest, event_type, status, queue, attempts, next_attempt_time, last_status_code, last_error, schedule_start, create_time, update_time")
	attempts := newBulk(tx, "attempts", "delivery_id, number, time, uri, status_code, latency_ns, error, response")
	events := newBulk(tx, "events", "id, project_id, type, payload, delivery_count, create_time")
	fix := benchFixture{key: raw, hook: hooks[0]}
	for i := 0; i < benchDeliveries; i += 2 {
		at := start.Add(time.Duration(i) * step)
		evID := core.NewSortableID(at)
		typ := core.EventBatchSucceeded
		if i%10 == 0 {
			typ = core.EventBatchFailed
		}
		payload := fmt.Sprintf(`{"type":%q,"version":"v1","timestamp":%q,"data":{"id":"batches/%d"}}`, typ, at.Format(time.RFC3339), i)
		events.add(b, evID, p.ID, typ, []byte(payload), 2, at.UnixMicro())
		for j := range 2 {
			id := core.NewMessageID(at)
			hook := hooks[(i/2+j*7)%benchHooks]
			status, code, errText, next := "succeeded", 200, "", int64(0)
			switch r := rand.IntN(100); {
			case r < 7:
				status, code, errText = "failed", 500, "http_status: HTTP 500"
			case r < 8:
				status, code, errText, next = "pending", 503, "unavailable: HTTP 503", now.Add(time.Hour).UnixMicro()
			case r < 9:
				status, code = "skipped", 0
			}
			if at.After(now.Add(-time.Minute)) && status == "succeeded" {
				status = "pending"
			}
			rows.add(b, id, evID, p.ID, hook, hook, typ, status, 1, 1, next, code, errText, at.UnixMicro(), at.UnixMicro(), at.UnixMicro())
			if code != 0 {
				attempts.add(b, id, 1, at.UnixMicro(), "https://example.com/x", code, int64(20+rand.IntN(400))*int64(time.Millisecond), errText, []byte("ok"))
			}
			if i == benchDeliveries/2 {
				fix.midDelivery, fix.delivery, fix.event = id, id, evID
			}
		}
	}
	rows.flush(b)
	attempts.flush(b)
	events.flush(b)
	// The rollup, as the publish and completion transactions would have
	// written it.
	for _, q := range []string{
		`INSERT INTO stats (project_id, bucket, webhook_id, succeeded, retrying, failed, lat8)
		 SELECT project_id, create_time / 300000000 * 300000000, webhook_id,
		        sum(status = 'succeeded'), sum(status = 'pending'), sum(status = 'failed'), count(*)
		 FROM deliveries GROUP BY 1, 2, 3`,
		`INSERT INTO stats (project_id, bucket, webhook_id, succeeded, retrying, failed, lat8)
		 SELECT project_id, bucket, '*', sum(succeeded), sum(retrying), sum(failed), sum(lat8)
		 FROM stats GROUP BY 1, 2`,
		`INSERT INTO stats (project_id, bucket, webhook_id, events)
		 SELECT project_id, create_time / 300000000 * 300000000, '*', count(*) FROM events GROUP BY 1, 2
		 ON CONFLICT (project_id, webhook_id, bucket) DO UPDATE SET events = excluded.events`,
		`UPDATE webhooks SET consecutive_failures = 12, failing_since = ` + fmt.Sprint(now.Add(-3*time.Hour).UnixMicro()) +
			` WHERE id IN ('` + hooks[1] + `', '` + hooks[2] + `')`,
		`UPDATE webhooks SET state = 'disabled_due_to_failed_deliveries' WHERE id = '` + hooks[3] + `'`,
		`CREATE TABLE bench_fixture (k TEXT, v TEXT)`,
	} {
		if _, err := tx.Exec(q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	for k, v := range map[string]string{"key": fix.key, "hook": fix.hook, "delivery": fix.delivery, "mid": fix.midDelivery, "event": fix.event} {
		if _, err := tx.Exec(`INSERT INTO bench_fixture VALUES (?, ?)`, k, v); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(`ANALYZE; PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	db.Close()
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	_ = os.Remove(tmp + "-wal")
	_ = os.Remove(tmp + "-shm")
	return fix
}

func readFixture(b testing.TB, path string) benchFixture {
	db, err := sql.Open("sqlite", path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	m := map[string]string{}
	rows, err := db.Query(`SELECT k, v FROM bench_fixture`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			b.Fatal(err)
		}
		m[k] = v
	}
	return benchFixture{key: m["key"], hook: m["hook"], delivery: m["delivery"], midDelivery: m["mid"], event: m["event"]}
}

// bulk writes rows with multi-row INSERTs.
type bulk struct {
	tx    *sql.Tx
	head  string
	ncol  int
	args  []any
	count int
}

func newBulk(tx *sql.Tx, table, cols string) *bulk {
	return &bulk{tx: tx, head: "INSERT INTO " + table + " (" + cols + ") VALUES ", ncol: strings.Count(cols, ",") + 1}
}

func (k *bulk) add(b testing.TB, vals ...any) {
	k.args = append(k.args, vals...)
	k.count++
	if len(k.args) >= 30000/k.ncol*k.ncol {
		k.flush(b)
	}
}

func (k *bulk) flush(b testing.TB) {
	if k.count == 0 {
		return
	}
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", k.ncol), ",") + ")"
	q := k.head + strings.TrimSuffix(strings.Repeat(row+",", k.count), ",")
	if _, err := k.tx.Exec(q, k.args...); err != nil {
		b.Fatal(err)
	}
	k.args, k.count = k.args[:0], 0
}
