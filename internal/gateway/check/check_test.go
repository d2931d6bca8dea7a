package check

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/longhook/longhook/internal/gateway"
	"github.com/longhook/longhook/webhook"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The only exception: the Pub/Sub client links OpenCensus, whose
		// view worker starts at init and never ends.
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// correctReceiver is the longhook gateway itself: verify → dedupe → store.
// project, when set, pins the JWT source to that project.
func correctReceiver(t *testing.T, secret, issuer, project string) *httptest.Server {
	t.Helper()
	g, err := gateway.NewGateway(context.Background(), gateway.Config{
		DataDir: t.TempDir(),
		Sources: []gateway.SourceConfig{{Name: "app", Path: "/hook", Verify: gateway.VerifyConfig{
			HMACSecrets: []string{secret},
			JWKS:        &gateway.JWKSConfig{URL: issuer + "/.well-known/jwks.json", Issuer: issuer, Audience: "https://app.example/hook", Project: project},
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(func() {
		srv.Close()
		_ = g.Close()
	})
	return srv
}

// noSignatureCheck processes whatever arrives.
func noSignatureCheck(t *testing.T) *httptest.Server {
	var mu sync.Mutex
	seen := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if seen[r.Header.Get(webhook.HeaderID)] {
			return
		}
		seen[r.Header.Get(webhook.HeaderID)] = true
		var v map[string]any
		if json.NewDecoder(r.Body).Decode(&v) != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// noDedupe verifies properly but processes every delivery.
func noDedupe(t *testing.T, secret string) *httptest.Server {
	v, err := webhook.NewVerifier([]string{secret})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := v.Verify(r.Header, body); err != nil {
			http.Error(w, "invalid webhook", http.StatusUnauthorized)
			return
		}
		var evt map[string]any
		if json.Unmarshal(body, &evt) != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func run(t *testing.T, url string, args ...string) (string, error) {
	t.Helper()
	var out strings.Builder
	err := RunCheck(context.Background(), append([]string{url}, args...), func(string) string { return "" }, &out, io.Discard)
	return out.String(), err
}

func TestCheckTellsReceiversApart(t *testing.T) {
	t.Parallel()
	secret, _ := webhook.NewSecret()
	issuer := "http://" + freeAddr(t)

	good := correctReceiver(t, secret, issuer, "")
	out, err := run(t, good.URL+"/hook", "--secret", secret, "--jwks-issuer", issuer, "--audience", "https://app.example/hook")
	if err != nil {
		t.Fatalf("correct receiver failed: %v\n%s", err, out)
	}
	t.Log("\n" + out)
	if !strings.Contains(out, "16 of 16 cases passed") {
		t.Errorf("report:\n%s", out)
	}

	out, err = run(t, noSignatureCheck(t).URL, "--secret", secret)
	if err == nil {
		t.Fatalf("receiver without signature checks passed:\n%s", out)
	}
	for _, c := range []string{"bad-signature", "missing-signature", "tampered-body", "stale-timestamp", "future-timestamp"} {
		if !strings.Contains(err.Error(), c) {
			t.Errorf("no-signature receiver: %q not reported in %v", c, err)
		}
	}

	out, err = run(t, noDedupe(t, secret).URL, "--secret", secret, "--json")
	if err == nil || !strings.Contains(err.Error(), "1 of 9 cases failed: redelivery-not-reprocessed") {
		t.Fatalf("non-deduplicating receiver: %v\n%s", err, out)
	}
	var rep struct{ Results []Result }
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Results) != 9 {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
}

// TestCheckProjectPin (issue 13, defect 1): with --project, check sends a
// genuine token of another project of the same sender; a receiver pinned
// to the project refuses it, one that is not pinned fails the case.
func TestCheckProjectPin(t *testing.T) {
	t.Parallel()
	secret, _ := webhook.NewSecret()
	issuer := "http://" + freeAddr(t)
	pinned := correctReceiver(t, secret, issuer, "proj-a")
	out, err := run(t, pinned.URL+"/hook", "--jwks-issuer", issuer, "--audience", "https://app.example/hook", "--project", "proj-a")
	if err != nil || !strings.Contains(out, "jwt-wrong-project") || !strings.Contains(out, "8 of 8 cases passed") {
		t.Fatalf("pinned receiver: %v\n%s", err, out)
	}
	issuer2 := "http://" + freeAddr(t)
	open := correctReceiver(t, secret, issuer2, "")
	out, err = run(t, open.URL+"/hook", "--jwks-issuer", issuer2, "--audience", "https://app.example/hook", "--project", "proj-a")
	if err == nil || !strings.Contains(err.Error(), "1 of 8 cases failed: jwt-wrong-project") {
		t.Fatalf("receiver without a project pin: %v\n%s", err, out)
	}
}

// A second run without --jwt-key signs with a new key, which a receiver
// that cached the first run's JWKS does not fetch yet (its refetch is rate
// limited): jwt-valid fails, and check now says why and what to do instead
// of leaving a receiver that is right looking wrong.
func TestCheckHintsAtJWTKey(t *testing.T) {
	t.Parallel()
	secret, _ := webhook.NewSecret()
	issuer := "http://" + freeAddr(t)
	recv := correctReceiver(t, secret, issuer, "")
	args := []string{recv.URL + "/hook", "--jwks-issuer", issuer, "--audience", "https://app.example/hook"}
	var stderr strings.Builder
	if err := RunCheck(context.Background(), args, func(string) string { return "" }, io.Discard, &stderr); err != nil {
		t.Fatalf("first run: %v", err)
	}
	if strings.Contains(stderr.String(), "hint") {
		t.Errorf("a passing run printed a hint:\n%s", stderr.String())
	}
	stderr.Reset()
	err := RunCheck(context.Background(), args, func(string) string { return "" }, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "jwt-valid") {
		t.Fatalf("second run with a new key: %v, want jwt-valid to fail", err)
	}
	if !strings.Contains(stderr.String(), "hint") || !strings.Contains(stderr.String(), "--jwt-key") {
		t.Errorf("no hint at --jwt-key on stderr:\n%s", stderr.String())
	}
}

func TestCheckUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"http://127.0.0.1:1/hook"},                            // no mode
		{"--secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, // no URL
		{"ftp://x", "--secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		{"http://127.0.0.1:1/hook", "--jwks-issuer", "http://example.com:80"},
	} {
		err := RunCheck(context.Background(), args, func(string) string { return "" }, io.Discard, io.Discard)
		if err == nil || errors.Is(err, context.Canceled) {
			t.Errorf("%v: accepted", args)
		}
	}
}

// TestCheckPresets points check, signing as each provider does, at the
// gateway configured with that provider's preset (a correct receiver:
// every case passes) and at a receiver that checks nothing (the forgery
// cases fail). Sign's output is verified by the providers' own libraries
// in package verify.
func TestCheckPresets(t *testing.T) {
	t.Parallel()
	const secret = "whsec_checkPresetSecret"
	cases := map[string]int{"stripe": 8, "github": 6, "slack": 7, "shopify": 6}
	for kind, n := range cases {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			g, err := gateway.NewGateway(context.Background(), gateway.Config{
				DataDir: t.TempDir(),
				Sources: []gateway.SourceConfig{{Name: "app", Path: "/hook", Verify: gateway.VerifyConfig{
					Kind: kind, HMACSecrets: []string{secret}}}},
			})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(g.Handler())
			t.Cleanup(func() {
				srv.Close()
				_ = g.Close()
			})
			out, err := run(t, srv.URL+"/hook", "--preset", kind, "--secret", secret)
			if err != nil || !strings.Contains(out, fmt.Sprintf("%d of %d cases passed", n, n)) {
				t.Fatalf("gateway with the %s preset: %v\n%s", kind, err, out)
			}
			out, err = run(t, noSignatureCheck(t).URL, "--preset", kind, "--secret", secret)
			if err == nil || !strings.Contains(err.Error(), "bad-signature") || !strings.Contains(err.Error(), "tampered-body") {
				t.Fatalf("receiver without checks: %v\n%s", err, out)
			}
		})
	}
	if _, err := run(t, "http://127.0.0.1:1/hook", "--preset", "paypal", "--secret", secret); err == nil || !strings.Contains(err.Error(), "unknown kind") {
		t.Errorf("unknown preset: %v", err)
	}
}

// TestCheckStandardWebhooksPreset: the gateway's kind names for check's
// default cases are accepted as --preset (a user testing an OpenAI or
// Gemini receiver writes the kind the gateway config uses): the Standard
// Webhooks cases run, all passing against the gateway's own source.
func TestCheckStandardWebhooksPreset(t *testing.T) {
	t.Parallel()
	secret, _ := webhook.NewSecret()
	g, err := gateway.NewGateway(context.Background(), gateway.Config{
		DataDir: t.TempDir(),
		Sources: []gateway.SourceConfig{{Name: "app", Path: "/hook", Verify: gateway.VerifyConfig{
			Kind: gateway.KindStandardWebhooks, HMACSecrets: []string{secret}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(func() {
		srv.Close()
		_ = g.Close()
	})
	for _, kind := range []string{gateway.KindStandardWebhooks, gateway.KindGemini} {
		if out, err := run(t, srv.URL+"/hook", "--preset", kind, "--secret", secret); err != nil || !strings.Contains(out, "9 of 9 cases passed") {
			t.Errorf("--preset %s: %v\n%s", kind, err, out)
		}
	}
}

// TestCheckUnreachableReceiver (newcomer's read-through): with nothing
// listening, check says once that the receiver could not be reached and
// marks the other cases as not run, instead of repeating the connection
// error in every row. A receiver that accepts connections but drops them
// is not "unreachable": each case runs and fails with its own short error.
func TestCheckUnreachableReceiver(t *testing.T) {
	t.Parallel()
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	target := "http://" + freeAddr(t) + "/hook"
	var out strings.Builder
	err := RunCheck(context.Background(), []string{target, "--secret", secret}, func(string) string { return "" }, &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "cannot reach the receiver") || strings.Count(err.Error(), "connection refused") != 1 {
		t.Fatalf("error: %v", err)
	}
	text := out.String()
	if strings.Contains(text, "connection refused") || strings.Contains(text, target) {
		t.Errorf("the report repeats the connection error:\n%s", text)
	}
	if n := strings.Count(text, "\nnot run "); n != 8 {
		t.Errorf("%d rows not run, want 8:\n%s", n, text)
	}
	if !strings.Contains(text, "0 of 9 cases passed; the receiver could not be reached, 8 not run\n") {
		t.Errorf("summary:\n%s", text)
	}

	out.Reset()
	_ = RunCheck(context.Background(), []string{target, "--secret", secret, "--json"}, func(string) string { return "" }, &out, io.Discard)
	var doc struct {
		Results     []Result `json:"results"`
		Unreachable string   `json:"unreachable"`
	}
	if err := json.Unmarshal([]byte(out.String()), &doc); err != nil {
		t.Fatal(err)
	}
	notRun := 0
	for _, r := range doc.Results {
		if r.NotRun {
			notRun++
		}
	}
	if notRun != 8 || !strings.Contains(doc.Unreachable, "connection refused") {
		t.Errorf("json: %d not run, unreachable %q", notRun, doc.Unreachable)
	}

	dropper := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer dropper.Close()
	out.Reset()
	err = RunCheck(context.Background(), []string{dropper.URL + "/hook", "--secret", secret}, func(string) string { return "" }, &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "9 of 9 cases failed") || strings.Contains(out.String(), "not run") ||
		strings.Count(out.String(), "error: EOF") != 9 || strings.Contains(out.String(), dropper.URL) {
		t.Errorf("a receiver that drops connections: %v\n%s", err, out.String())
	}
}
