package cli

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// The commands that work on a data dir directly answer -h with their
// verbs and refuse an unknown verb, before they open (and so create) a
// database or a master key.
func TestLocalCommandVerbs(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ group, verb string }{
		{"projects", "create"}, {"keys", "revoke"}, {"jwks", "rotate"}, {"migrate", "status"},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		for _, h := range []string{"-h", "--help", "help"} {
			code, _, errs := run(t, nil, c.group, h, "--data-dir", dir)
			if code != 0 || !strings.Contains(errs, "Usage: longhook "+c.group+" <command>") || !strings.Contains(errs, "  "+c.verb+" ") {
				t.Errorf("%s %s: exit %d, %q", c.group, h, code, errs)
			}
		}
		code, _, errs := run(t, nil, c.group, "frobnicate", "--data-dir", dir)
		if code != 2 || !strings.Contains(errs, `unknown command "frobnicate" for longhook `+c.group) {
			t.Errorf("%s frobnicate: exit %d, %q", c.group, code, errs)
		}
		if code, _, _ := run(t, nil, c.group, "--data-dir", dir); code != 2 {
			t.Errorf("%s without a verb: exit %d, want 2", c.group, code)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s: help or a usage error made the data dir (%v)", c.group, err)
		}
	}
}

// migrate status on SQLite reports what is applied and pending without
// applying it, and does not create a missing database.
func TestMigrateStatusChangesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	code, _, errs := run(t, nil, "migrate", "status", "--data-dir", dir)
	if code != 1 || !strings.Contains(errs, "no database at") {
		t.Fatalf("status of a missing file: exit %d, %q", code, errs)
	}
	db := filepath.Join(dir, "longhook.db")
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Fatalf("status created the database (%v)", err)
	}
	if code, _, errs := run(t, nil, "projects", "create", "probe", "--data-dir", dir); code != 0 {
		t.Fatalf("projects create: %d %s", code, errs)
	}
	code, out, errs := run(t, nil, "migrate", "status", "--data-dir", dir)
	if code != 0 || strings.Contains(out, "pending") || !strings.Contains(out, "applied   0001_init") {
		t.Fatalf("status of a migrated file: exit %d, %q %q", code, out, errs)
	}
	// Forget the newest migration, as a file an older binary made would.
	last := strings.Fields(strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]))[1]
	h, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.Exec(`DELETE FROM schema_migrations WHERE version = ?`, last); err != nil {
		t.Fatal(err)
	}
	code, out, errs = run(t, nil, "migrate", "status", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "pending   "+last) {
		t.Fatalf("status with %s pending: exit %d, %q %q", last, code, out, errs)
	}
	var n int
	if err := h.QueryRow(`SELECT count(*) FROM schema_migrations WHERE version = ?`, last).Scan(&n); err != nil || n != 0 {
		t.Fatalf("status applied %s (%d rows, %v)", last, n, err)
	}
	if code, _, _ := run(t, nil, "migrate", "status", "--database-url", "mysql://x"); code != 2 {
		t.Fatalf("status of a mysql URL: exit %d, want 2", code)
	}
}

// gateway's command-line mistakes exit 2 (usage) like every other
// command's, with the gateway's own message.
func TestGatewayUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"gateway"}, {"gateway", "--nope"}, {"gateway", "extra", "--config", "x.yaml"}} {
		code, _, errs := run(t, map[string]string{}, args...)
		if code != 2 || !strings.Contains(errs, "longhook: gateway: usage: ") {
			t.Errorf("%v: exit %d, %q", args, code, errs)
		}
	}
	if code, _, _ := run(t, nil, "gateway", "-h"); code != 0 {
		t.Errorf("gateway -h: exit %d, want 0", code)
	}
	// Bad values of flags are usage mistakes too, in gateway and listen as
	// in serve: exit 2, the flag named.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"gateway", "--config", "x.yaml", "--log-level", "bogus"}, "gateway: usage: --log-level"},
		{[]string{"gateway", "--config", "x.yaml", "--log-format", "xml"}, "usage: --log-format"},
		{[]string{"listen"}, "listen: usage: --from is required"},
		{[]string{"listen", "--from", "not a url", "--forward-to", "http://127.0.0.1:1/"}, "listen: usage: --from"},
		{[]string{"listen", "--from", "http://127.0.0.1:1/_longhook/listen/x", "--forward-to", "http://127.0.0.1:1/"}, "listen: usage: --token is required"},
		{[]string{"listen", "--from", "http://127.0.0.1:1/v1beta/webhooks/abc", "--forward-to", "http://127.0.0.1:1/"}, "listen: usage: --api-key is required"},
		{[]string{"listen", "--from", "http://127.0.0.1:1/_longhook/listen/x", "--forward-to", "http://127.0.0.1:1/", "--token", "t", "--after", "soon"}, "listen: usage: --after"},
		{[]string{"listen", "--from", "http://127.0.0.1:1/_longhook/listen/x", "--forward-to", "http://127.0.0.1:1/", "--token", "t", "--log-level", "loud"}, "usage: --log-level"},
		{[]string{"listen", "--from", "http://127.0.0.1:1/_longhook/listen/x", "--forward-to", "http://127.0.0.1:1/", "--token", "t", "--timeout", "-1s"}, "listen: usage: --timeout"},
		{[]string{"listen", "--from", "http://127.0.0.1:1/_longhook/listen/x", "--forward-to", "http://127.0.0.1:1/", "--token", "t", "--timeout", "0s"}, "listen: usage: --timeout"},
	} {
		code, _, errs := run(t, map[string]string{}, c.args...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", c.args, code, errs, c.want)
		}
	}
}

// A gateway start refused for its configuration — the config file, a
// flag's value, the TLS files, an OTEL_* variable — exits 2 like serve's
// configuration errors (README: 2 usage or configuration error), names
// what is wrong, and leaves the disk as it was: no data dir, no inbox.
// An address in use is a failure (exit 1), also checked before the inbox
// is created.
func TestGatewayConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "sources:\n  - name: s\n    verify: {hmac_secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]}\n    sinks: [{name: k, discard: {}}]\n")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for i, c := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"no sources", nil, []string{"--config", write("empty.yaml", "sources: []\n")}, 2, "sources: at least one source is required"},
		{"unknown field", nil, []string{"--config", write("unknown.yaml", "sources: []\nbogus: 1\n")}, 2, "field bogus not found"},
		{"missing file", nil, []string{"--config", filepath.Join(dir, "absent.yaml")}, 2, "absent.yaml"},
		{"unset variable", nil, []string{"--config", write("env.yaml", "sources:\n  - name: s\n    verify: {hmac_secrets: [\"${NOPE_SECRET}\"]}\n    sinks: [{name: k, discard: {}}]\n")}, 2, "NOPE_SECRET"},
		{"bad secret", nil, []string{"--config", write("secret.yaml", "sources:\n  - name: s\n    verify: {hmac_secrets: [whsec_!!]}\n    sinks: [{name: k, discard: {}}]\n")}, 2, "hmac_secrets"},
		{"bad redis url", nil, []string{"--config", write("redis.yaml", "sources:\n  - name: s\n    verify: {hmac_secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]}\n    sinks: [{name: r, redis: {url: \"notaurl\", stream: s}}]\n")}, 2, "redis.url"},
		{"bad --database", nil, []string{"--config", good, "--database", "bogus://x"}, 2, "database"},
		{"--tls-cert alone", nil, []string{"--config", good, "--tls-cert", filepath.Join(dir, "absent.pem")}, 2, "--tls-key"},
		{"unreadable TLS files", nil, []string{"--config", good, "--tls-cert", filepath.Join(dir, "absent.pem"), "--tls-key", filepath.Join(dir, "absent.key")}, 2, "absent.pem"},
		{"OTEL exporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, []string{"--config", good}, 2, "OTEL_TRACES_EXPORTER"},
		{"OTEL sampler", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "sometimes"}, []string{"--config", good}, 2, "OTEL_TRACES_SAMPLER=sometimes is not supported"},
		{"address in use", nil, []string{"--config", good, "--addr", busy.Addr().String()}, 1, "address already in use"},
	} {
		data := filepath.Join(dir, fmt.Sprintf("data%d", i))
		args := append([]string{"gateway", "--data-dir", data}, c.args...)
		if c.code != 1 {
			args = append(args, "--addr", "127.0.0.1:0")
		}
		code, _, errs := run(t, c.env, args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%s: exit %d, %q; want %d and %q", c.name, code, errs, c.code, c.want)
		}
		if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: the refused start created %s (%v)", c.name, data, err)
		}
	}
}

// check's command-line mistakes — a receiver URL that is not http(s), no
// --secret or --jwks-issuer, a secret that does not parse, an unknown or
// misused --preset, a --jwks-issuer that is not a loopback http URL, a JWT
// setting (--project, --audience, --jwt-key) without --jwks-issuer — exit
// 2 (usage, the flag named) like listen's and gateway's, and are found
// before any case is sent: the receiver sees no request.
func TestCheckUsageErrors(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
	defer recv.Close()
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"ftp://example.com/hook", "--secret", secret}, "check: usage: the receiver URL"},
		{[]string{recv.URL}, "check: usage: give --secret"},
		{[]string{recv.URL, "--secret", "bogus"}, "check: usage: --secret 1"},
		{[]string{recv.URL, "--secret", secret, "--secret", "whsec_!"}, "check: usage: --secret 2"},
		{[]string{recv.URL, "--preset", "paypal", "--secret", "s"}, "check: usage: --preset"},
		{[]string{recv.URL, "--preset", "hmac", "--secret", "s"}, "check: usage: --preset"},
		{[]string{recv.URL, "--preset", "stripe", "--secret", "a", "--secret", "b"}, "check: usage: --preset"},
		{[]string{recv.URL, "--jwks-issuer", "https://example.com"}, "check: usage: --jwks-issuer"},
		{[]string{recv.URL, "--secret", secret, "--jwks-issuer", "http://192.0.2.1:8765"}, "check: usage: --jwks-issuer"},
		{[]string{recv.URL, "--secret", secret, "--timeout", "-1s"}, "check: usage: --timeout"},
		// JWT settings without the JWT cases would be silently ignored.
		{[]string{recv.URL, "--secret", secret, "--project", "p1"}, "check: usage: --project applies to the JWT cases"},
		{[]string{recv.URL, "--secret", secret, "--audience", "https://a.example"}, "check: usage: --audience"},
		{[]string{recv.URL, "--preset", "github", "--secret", "s", "--jwt-key", "k.pem"}, "check: usage: --jwt-key"},
	} {
		code, _, errs := run(t, map[string]string{}, append([]string{"check"}, c.args...)...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", c.args, code, errs, c.want)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the receiver got %d requests from refused checks, want 0", n)
	}
}

// migrate up on SQLite refuses a missing database instead of creating an
// empty one at a mistyped --data-dir and calling it up to date; on an
// existing file it says what it applied, as on PostgreSQL.
func TestMigrateUpNeedsADatabase(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "typo")
	code, _, errs := run(t, nil, "migrate", "up", "--data-dir", dir)
	if code != 1 || !strings.Contains(errs, "no database at") {
		t.Fatalf("up on a missing file: exit %d, %q; want 1 and 'no database at'", code, errs)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("up on a missing file made %s (%v)", dir, err)
	}
	if code, _, errs := run(t, nil, "projects", "create", "probe", "--data-dir", dir); code != 0 {
		t.Fatalf("projects create: %d %s", code, errs)
	}
	code, out, errs := run(t, nil, "migrate", "up", "--data-dir", dir)
	if code != 0 || strings.TrimSpace(out) != "no pending migrations" {
		t.Fatalf("up on a migrated file: exit %d, %q %q", code, out, errs)
	}
}

// Every command answers -h and --help with its usage and exit 0, as
// 'longhook -h' tells the reader to run it ("Run 'longhook <command> -h'
// for the flags of a command") — completion included.
func TestEveryCommandHelp(t *testing.T) {
	t.Parallel()
	for _, c := range commands() {
		for _, h := range []string{"-h", "--help"} {
			code, out, errs := run(t, nil, c.name, h)
			if code != 0 || strings.TrimSpace(out+errs) == "" || strings.Contains(errs, "unknown") {
				t.Errorf("%s %s: exit %d, %q %q", c.name, h, code, out, errs)
			}
		}
	}
}

// A --page-size outside 0–1000 is a usage error (exit 2) before any
// request: the API refuses a negative one and cuts a bigger one to 1000,
// which the list would show without a word.
func TestPageSizeOutOfRange(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"webhooks", "list", "--page-size", "-1"},
		{"events", "list", "--page-size", "-5"},
		{"events", "list", "--page-size", "5000"},
		{"deliveries", "list", "wh", "--page-size", "1001"},
	} {
		// An unreachable server: reaching it would exit 3.
		code, _, errs := run(t, nil, append(args, "--server", "http://127.0.0.1:1", "--api-key", "k")...)
		if code != 2 || !strings.Contains(errs, "--page-size must be 1 to 1000") {
			t.Errorf("%v: exit %d, %q; want 2 naming --page-size", args, code, errs)
		}
	}
}
