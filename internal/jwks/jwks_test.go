package jwks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/clocktest"
	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/secretbox"
	"github.com/longhook/longhook/internal/store/sqlite"
	"github.com/longhook/longhook/webhook"
)

type fixture struct {
	store *sqlite.Store
	box   *secretbox.Box
	clock *clocktest.Clock
	m     *Manager
	srv   *httptest.Server
}

func setup(t *testing.T, alg string) *fixture {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	box, _ := secretbox.New(bytes.Repeat([]byte{3}, 32))
	f := &fixture{store: st, box: box, clock: clocktest.New(time.Now().UTC().Truncate(time.Second))}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.m.ServeHTTP(w, r) }))
	t.Cleanup(f.srv.Close)
	f.m, err = New(context.Background(), Config{Store: st, Cipher: box, Clock: f.clock, Issuer: f.srv.URL, Algorithm: alg,
		TokenTTL: 5 * time.Minute, Margin: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func claimed(payload string) *core.Claimed {
	return &core.Claimed{Delivery: core.Delivery{ID: core.NewMessageID(time.Now()), EventID: "ev1"}, Payload: []byte(payload), Subject: "batches/abc"}
}

func (f *fixture) verify(t *testing.T, c *core.Claimed, tok, aud string) (*webhook.Claims, error) {
	t.Helper()
	v, err := webhook.NewJWKSVerifier(f.srv.URL, f.srv.URL, aud, webhook.WithClock(f.clock.Now), webhook.WithAlgorithms("RS256", "ES256", "EdDSA"), webhook.WithMinRefreshInterval(time.Nanosecond))
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(webhook.HeaderID, c.ID)
	h.Set(webhook.HeaderTimestamp, "0")
	h.Set(webhook.HeaderSignature, tok)
	return v.Verify(context.Background(), h, c.Payload)
}

func TestSignedTokenVerifiesAgainstServedJWKS(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			f := setup(t, alg)
			c := claimed(`{"type":"batch.succeeded","version":"v1","timestamp":"2026-05-05T12:00:00Z","data":{"id":"batches/abc"}}`)
			tok, err := f.m.SignDynamic(context.Background(), c, "https://r.example/hook", f.clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			cl, err := f.verify(t, c, tok, "https://r.example/hook")
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if cl.Subject != "batches/abc" || cl.ID != c.ID || cl.Type != "batch.succeeded" || string(cl.Data) != `{"id":"batches/abc"}` || cl.Issuer != f.srv.URL {
				t.Fatalf("claims: %+v", cl)
			}
			if exp := cl.ExpiresAt.Time().Sub(cl.IssuedAt.Time()); exp != 5*time.Minute {
				t.Fatalf("exp - iat = %v, want 5m", exp)
			}
		})
	}
}

func TestTokenReuseAndAudienceOverride(t *testing.T) {
	t.Parallel()
	f := setup(t, "")
	c := claimed(`{"type":"t.x","version":"v1","timestamp":"x","data":{}}`)
	ctx := context.Background()
	t1, _ := f.m.SignDynamic(ctx, c, "https://r.example/a", f.clock.Now())
	f.clock.Advance(30 * time.Second)
	t2, _ := f.m.SignDynamic(ctx, c, "https://r.example/a", f.clock.Now())
	if t1 != t2 {
		t.Fatal("a retry within the token's validity should reuse it")
	}
	f.clock.Advance(4 * time.Minute)
	t3, _ := f.m.SignDynamic(ctx, c, "https://r.example/a", f.clock.Now())
	if t3 == t1 {
		t.Fatal("a token with under a minute left must not be reused")
	}
	c2 := claimed(`{"type":"t.x","version":"v1","timestamp":"x","data":{}}`)
	c2.Dynamic = &core.WebhookConfig{Audience: "https://r.example"}
	tok, _ := f.m.SignDynamic(ctx, c2, "https://r.example/a", f.clock.Now())
	if _, err := f.verify(t, c2, tok, "https://r.example"); err != nil {
		t.Fatalf("audience override: %v", err)
	}
}

// TestTokenAudienceAndProject (issue 13, defect 1): a stored audience that
// names neither the URI nor its origin (an event accepted before the
// check) does not reach the token; every token names the delivery's
// project.
func TestTokenAudienceAndProject(t *testing.T) {
	t.Parallel()
	f := setup(t, "")
	ctx := context.Background()
	c := claimed(`{"type":"t.x","version":"v1","timestamp":"x","data":{}}`)
	c.ProjectID = "proj-b"
	c.Dynamic = &core.WebhookConfig{URIs: []string{"https://b.example/in"}, Audience: "https://a.example/gateway"}
	tok, err := f.m.SignDynamic(ctx, c, "https://b.example/in", f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.verify(t, c, tok, "https://a.example/gateway"); !errors.Is(err, webhook.ErrAudience) {
		t.Fatalf("token for another receiver's audience: %v, want ErrAudience", err)
	}
	cl, err := f.verify(t, c, tok, "https://b.example/in")
	if err != nil || cl.Project != "proj-b" {
		t.Fatalf("claims %+v, %v: want aud = the URI and project proj-b", cl, err)
	}
}

func TestRotationKeepsOldKeyUntilItsTokensExpire(t *testing.T) {
	t.Parallel()
	f := setup(t, "")
	ctx := context.Background()
	k1 := f.m.Current()
	c := claimed(`{"type":"t.x","version":"v1","timestamp":"x","data":{}}`)
	old, _ := f.m.SignDynamic(ctx, c, "https://r.example/a", f.clock.Now())
	k2, err := f.m.Rotate(ctx)
	if err != nil || k2 == k1 || f.m.Current() != k2 {
		t.Fatalf("rotate: %v %s %s", err, k1, k2)
	}
	c2 := claimed(`{"type":"t.x","version":"v1","timestamp":"x","data":{}}`)
	fresh, _ := f.m.SignDynamic(ctx, c2, "https://r.example/a", f.clock.Now())
	if kidOf(t, fresh) != k2 || kidOf(t, old) != k1 {
		t.Fatal("new deliveries must carry the new kid")
	}
	if _, err := f.verify(t, c, old, "https://r.example/a"); err != nil {
		t.Fatalf("old token stops verifying right after rotation: %v", err)
	}
	if !strings.Contains(f.jwks(t), k1) {
		t.Fatal("retired key left the JWKS too early")
	}
	f.clock.Advance(6*time.Minute + time.Second)
	if err := f.m.Maintain(ctx, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	doc := f.jwks(t)
	if strings.Contains(doc, k1) || !strings.Contains(doc, k2) {
		t.Fatalf("after expiry the JWKS should hold only %s: %s", k2, doc)
	}
}

func TestScheduledRotation(t *testing.T) {
	t.Parallel()
	f := setup(t, "")
	k1 := f.m.Current()
	f.clock.Advance(31 * 24 * time.Hour)
	if err := f.m.Maintain(context.Background(), f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if f.m.Current() == k1 {
		t.Fatal("key older than RotateEvery was not rotated")
	}
}

// TestRotationKeepsTheAlgorithm: a manager given no algorithm (serve
// without --jwt-algorithm) makes each new key with the current key's
// algorithm. An ES256 server (its key made by jwks rotate --jwt-algorithm
// ES256) was switched to RS256 by its next scheduled rotation, or the
// console's rotate button, breaking receivers that accept ES256 only.
func TestRotationKeepsTheAlgorithm(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"ES256", "EdDSA"} {
		f := setup(t, alg)
		m, err := New(context.Background(), Config{Store: f.store, Cipher: f.box, Clock: f.clock, Issuer: f.srv.URL,
			TokenTTL: 5 * time.Minute, Margin: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		f.m = m
		f.clock.Advance(31 * 24 * time.Hour)
		if err := m.Maintain(context.Background(), f.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Rotate(context.Background()); err != nil {
			t.Fatal(err)
		}
		keys, err := f.store.SigningKeys(context.Background())
		if err != nil || len(keys) != 3 {
			t.Fatalf("%s: %d keys (%v), want the first and two rotations", alg, len(keys), err)
		}
		for _, k := range keys {
			if k.Algorithm != alg {
				t.Errorf("%s server: key %s made with %s", alg, k.ID, k.Algorithm)
			}
		}
		c := claimed(`{"type":"batch.succeeded"}`)
		tok, err := m.SignDynamic(context.Background(), c, "https://r.example/h", f.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.verify(t, c, tok, "https://r.example/h"); err != nil {
			t.Errorf("%s: token after rotation: %v", alg, err)
		}
	}
	// The first key of a new store is RS256.
	if f := setup(t, ""); jwkAlg(t, f) != "RS256" {
		t.Errorf("first key without an algorithm: %s, want RS256", jwkAlg(t, f))
	}
}

// jwkAlg is the alg of the only key f serves.
func jwkAlg(t *testing.T, f *fixture) string {
	t.Helper()
	var doc webhook.JWKS
	if err := json.Unmarshal([]byte(f.jwks(t)), &doc); err != nil || len(doc.Keys) != 1 {
		t.Fatalf("jwks: %v, %d keys", err, len(doc.Keys))
	}
	return doc.Keys[0].Alg
}

func TestPrivateKeysSealedAtRest(t *testing.T) {
	t.Parallel()
	f := setup(t, "")
	keys, err := f.store.SigningKeys(context.Background())
	if err != nil || len(keys) != 1 {
		t.Fatal(err, len(keys))
	}
	if bytes.Contains(keys[0].Sealed, []byte("PRIVATE")) || len(keys[0].Sealed) < 100 {
		t.Fatal("private key does not look sealed")
	}
	if _, err := f.box.Open(keys[0].Sealed); err != nil {
		t.Fatal("sealed key does not open with the master key")
	}
}

func (f *fixture) jwks(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=") {
		t.Fatalf("Cache-Control = %q", cc)
	}
	var doc struct{ Keys []map[string]any }
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func kidOf(t *testing.T, tok string) string {
	t.Helper()
	h, _, _ := strings.Cut(tok, ".")
	var hdr struct{ Kid string }
	b, err := base64URL(h)
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(b, &hdr)
	return hdr.Kid
}

// The token's claims are exactly docs/contract.md §4's set, whether the payload is
// the stored envelope (spliced in) or arrives in another shape (decoded).
func TestDynamicClaimsAreExactlyTheContractSet(t *testing.T) {
	t.Parallel()
	f := setup(t, "RS256")
	data := `{"id":"batches/abc","user_metadata":{"k":"<v> & \"q\""},"n":[1,2.5e3,null]}`
	for name, payload := range map[string]string{
		"envelope":  `{"type":"batch.succeeded","version":"v1","timestamp":"2026-05-05T12:00:00Z","data":` + data + `}`,
		"reordered": `{ "data": ` + data + `, "timestamp":"2026-05-05T12:00:00Z", "version":"v1", "type":"batch.succeeded", "extra": 1 }`,
	} {
		t.Run(name, func(t *testing.T) {
			c := claimed(payload)
			tok, err := f.m.SignDynamic(context.Background(), c, "https://r.example/hook", f.clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.verify(t, c, tok, "https://r.example/hook"); err != nil {
				t.Fatalf("verify: %v", err)
			}
			raw, err := base64URL(strings.Split(tok, ".")[1])
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]json.RawMessage
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatalf("claims are not a JSON object: %v\n%s", err, raw)
			}
			var keys []string
			for k := range got {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if want := []string{"aud", "body_sha256", "data", "exp", "iat", "iss", "jti", "sub", "timestamp", "type", "version"}; !slices.Equal(keys, want) {
				t.Fatalf("claim names %v, want %v", keys, want)
			}
			var gotData, wantData any
			_ = json.Unmarshal(got["data"], &gotData)
			_ = json.Unmarshal([]byte(data), &wantData)
			if !reflect.DeepEqual(gotData, wantData) || string(got["type"]) != `"batch.succeeded"` || string(got["version"]) != `"v1"` || string(got["timestamp"]) != `"2026-05-05T12:00:00Z"` {
				t.Fatalf("event claims: %s", raw)
			}
			if string(got["body_sha256"]) != `"`+webhook.BodyHash([]byte(payload))+`"` || string(got["jti"]) != `"`+c.ID+`"` {
				t.Fatalf("body_sha256/jti: %s", raw)
			}
		})
	}
}
