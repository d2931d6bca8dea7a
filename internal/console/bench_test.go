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
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/console"
	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/jobs"
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
	benchJobs       = 1000 // batches, each with its terminal event among the events
	// benchDBVersion names the cached fixture file: bump it when the
	// schema or the fixture changes.
	benchDBVersion = "v4"
)

// BenchmarkConsolePages renders every console page (server-side, the whole
// handler: session check, store reads, template) against a SQLite store of
// 1,000,000 deliveries and reports p50 and p99 per page, the CPU time per
// page, and the load average while it ran (wall time on a shared machine
// is load-sensitive; CPU time much less so). Each page's data endpoint is
// measured too: the API read that returns the same data as JSON, and for
// the webhook page its live stream's first frame. The store is built once
// (a few minutes) and kept in the temp directory between runs, keyed by
// benchDBVersion.
//
//	nice -n 5 go test -run '^$' -bench ConsolePages -benchtime 200x ./internal/console/
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
	// The jobs APIs, as serve wires them: the job page shows the job as
	// the API answers GET of its resource (no runner: nothing executes).
	svc, err := jobs.New(jobs.Config{Store: st, Dir: b.TempDir(),
		Publisher: publish.New(publish.Config{Store: st, Catalog: mustCatalog(b)})})
	if err != nil {
		b.Fatal(err)
	}
	h := api.NewServer(api.Deps{Store: st, Cipher: box, Jobs: svc, Console: func(a http.Handler) http.Handler {
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
		{"job", "/console/jobs/" + fix.job},
		{"admin", "/console/admin"},
		// The data endpoints: the same data from the API, as JSON, and
		// the webhook page's live stream (its first frame).
		{"data_webhooks", "/v1beta/webhooks"},
		{"data_deliveries", "/v1beta/webhooks/" + fix.hook + "/deliveries"},
		{"data_deliveries_failed", "/v1beta/webhooks/" + fix.hook + "/deliveries?status=failed"},
		{"data_delivery", "/v1beta/deliveries/" + fix.delivery},
		{"data_event", "/v1beta/events/" + fix.event},
		{"data_events", "/v1beta/events"},
		{"data_stream", "/console/webhooks/" + fix.hook + "/stream"},
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			cpu0 := procstat.CPUTime()
			for b.Loop() {
				ctx, cancel := context.WithCancel(ctx)
				req := httptest.NewRequestWithContext(ctx, "GET", p.path, nil)
				req.AddCookie(cookie)
				req.Header.Set("x-goog-api-key", fix.key)
				// A stream ends at its first flush: the time to its first
				// frame is what the page waits for.
				rec := &firstFlush{ResponseRecorder: httptest.NewRecorder(), cancel: cancel}
				start := time.Now()
				h.ServeHTTP(rec, req)
				lat = append(lat, time.Since(start))
				cancel()
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
			// The machine's load while the page ran: wall-time
			// percentiles mean little when it is above the CPU count.
			b.ReportMetric(loadAvg(), "load1")
			b.ReportMetric(float64(runtime.NumCPU()), "cpus")
		})
	}
}

// firstFlush is a recorder whose first flush cancels the request: a
// stream then returns after its first frame.
type firstFlush struct {
	*httptest.ResponseRecorder
	cancel func()
}

func (f *firstFlush) Flush() {
	f.ResponseRecorder.Flush()
	f.cancel()
}

// loadAvg is the 1-minute load average (0 where /proc is missing).
func loadAvg() float64 {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(raw))[0], 64)
	return f
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
	key, hook, delivery, midDelivery, event, job string
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
	now := time.Now().UTC()
	start := now.Add(-benchDays * 24 * time.Hour)
	step := benchDays * 24 * time.Hour / benchDeliveries
	// Every jobEvery-th event is a batch's terminal event, published
	// under the key the jobs package uses.
	const jobEvery = benchDeliveries / benchJobs
	jobs := map[int]string{}
	for i := 0; i < benchDeliveries; i += jobEvery {
		at := start.Add(time.Duration(i) * step)
		j := storetest.NewJob(p.ID, core.JobBatch, at.Add(-2*time.Minute))
		j.State, j.Sequence, j.TerminalEmitted = core.JobSucceeded, 1, true
		j.StartTime, j.EndTime, j.UpdateTime = at.Add(-time.Minute), at, at
		j.WebhookConfig = &core.WebhookConfig{URIs: []string{"https://example.com/jobs"}, UserMetadata: []byte(`{"n":` + strconv.Itoa(i) + `}`)}
		if err := st.CreateJob(ctx, j); err != nil {
			b.Fatal(err)
		}
		jobs[i] = j.ID
	}
	st.Close()

	// The bulk load: one transaction, no journal (a failed build is thrown
	// away), a big page cache, and the big tables' indexes dropped during
	// the load and built once at the end, which is several times faster
	// than keeping them up to date row by row.
	built := time.Now()
	db, err := sql.Open("sqlite", tmp+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(OFF)&_pragma=synchronous(OFF)&_pragma=cache_size(-131072)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	var indexes []string
	ixRows, err := tx.Query(`SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL
		AND tbl_name IN ('deliveries', 'attempts', 'events')`)
	if err != nil {
		b.Fatal(err)
	}
	var drop []string
	for ixRows.Next() {
		var name, def string
		if err := ixRows.Scan(&name, &def); err != nil {
			b.Fatal(err)
		}
		drop, indexes = append(drop, `DROP INDEX "`+name+`"`), append(indexes, def)
	}
	if err := ixRows.Err(); err != nil {
		b.Fatal(err)
	}
	for _, q := range drop {
		if _, err := tx.Exec(q); err != nil {
			b.Fatal(err)
		}
	}
	rows := newBulk(tx, "deliveries", "id, event_id, project_id, webhook_id, dest, event_type, status, queue, attempts, next_attempt_time, last_status_code, last_error, schedule_start, create_time, update_time")
	attempts := newBulk(tx, "attempts", "delivery_id, number, time, uri, status_code, latency_ns, error, response")
	events := newBulk(tx, "events", "id, project_id, type, subject, payload, idempotency_key, delivery_count, create_time")
	fix := benchFixture{key: raw, hook: hooks[0]}
	for i := 0; i < benchDeliveries; i += 2 {
		at := start.Add(time.Duration(i) * step)
		evID := core.NewSortableID(at)
		typ := core.EventBatchSucceeded
		if i%10 == 0 {
			typ = core.EventBatchFailed
		}
		subject, key := fmt.Sprintf("batches/%d", i), ""
		if id, ok := jobs[i]; ok {
			typ, subject, key = core.EventBatchSucceeded, "batches/"+id, "job:"+id+":terminal"
			if i == benchDeliveries/2 {
				fix.job = id
			}
		}
		payload := fmt.Sprintf(`{"type":%q,"version":"v1","timestamp":%q,"data":{"id":%q,"sequence":1}}`, typ, at.Format(time.RFC3339), subject)
		events.add(b, evID, p.ID, typ, subject, []byte(payload), key, 2, at.UnixMicro())
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
	for _, q := range indexes {
		if _, err := tx.Exec(q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
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
	for k, v := range map[string]string{"key": fix.key, "hook": fix.hook, "delivery": fix.delivery, "mid": fix.midDelivery, "event": fix.event, "job": fix.job} {
		if _, err := tx.Exec(`INSERT INTO bench_fixture VALUES (?, ?)`, k, v); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(`ANALYZE`); err != nil {
		b.Fatal(err)
	}
	db.Close()
	b.Logf("built the %d-delivery store in %s", benchDeliveries, time.Since(built).Round(time.Second))
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
	return benchFixture{key: m["key"], hook: m["hook"], delivery: m["delivery"], midDelivery: m["mid"], event: m["event"], job: m["job"]}
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
