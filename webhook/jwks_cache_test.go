package webhook

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

func TestJWKSFetchFailures(t *testing.T) {
	t.Parallel()
	valid := func(f *jwtFixture) []byte { return mustJSON(t, JWKS{Keys: []JWK{f.signer.PublicJWK()}}) }
	for _, tc := range []struct {
		name   string
		opts   []Option
		body   func(f *jwtFixture) []byte
		status int
	}{
		{"garbage", nil, func(*jwtFixture) []byte { return []byte("<html>oops</html>") }, 200},
		{"json but not a jwks", nil, func(*jwtFixture) []byte { return []byte(`{"keys":null}`) }, 200},
		{"json array", nil, func(*jwtFixture) []byte { return []byte(`[{"kty":"RSA"}]`) }, 200},
		{"no usable key", nil, func(*jwtFixture) []byte {
			return []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"rsa-2026-05"},{"kty":"RSA","kid":"rsa-2026-05","n":"AQAB","e":"AQAB"}]}`)
		}, 200},
		{"huge (default limit 1 MiB)", nil, func(f *jwtFixture) []byte {
			return append(valid(f), bytes.Repeat([]byte(" "), DefaultMaxJWKSSize)...)
		}, 200},
		{"over WithMaxJWKSSize", []Option{WithMaxJWKSSize(100)}, valid, 200},
		{"status 500", nil, valid, 500},
		{"status 404", nil, valid, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setupJWT(t, tc.opts...)
			f.srv.set(tc.body(f), tc.status)
			_, err := f.verify(f.sign(t, f.claims("msg_1")), "msg_1", f.body)
			wantErr(t, err, ErrJWKSFetch)
			if errors.Is(err, ErrUnknownKeyID) {
				t.Errorf("fetch failure also reported as unknown kid: %v", err)
			}
		})
	}
}

func TestJWKSSkipsUnusableKeys(t *testing.T) {
	t.Parallel()
	f := setupJWT(t)
	good := f.signer.PublicJWK()
	enc := good
	enc.Use = "enc"
	hs := JWK{Kty: "oct", Alg: "HS256", Kid: "hmac"}
	f.srv.setKeys(t, JWK{Kty: "RSA", Kid: "broken", N: "AQAB", E: "AQAB"}, hs, good)
	if _, err := f.verify(f.sign(t, f.claims("msg_1")), "msg_1", f.body); err != nil {
		t.Fatal(err)
	}

	// A key published only for encryption is not a signing key.
	f2 := setupJWT(t)
	f2.srv.setKeys(t, enc, JWK{Kty: "OKP", Crv: "Ed25519", Kid: "other", X: b64url.EncodeToString(make([]byte, 32))})
	_, err := f2.verify(f2.sign(t, f2.claims("msg_1")), "msg_1", f2.body)
	wantErr(t, err, ErrUnknownKeyID)
}

func TestJWKSDownKeepsCachedKeys(t *testing.T) {
	t.Parallel()
	f := setupJWT(t)
	verify := func() error {
		_, err := f.verify(f.sign(t, f.claims("msg_1")), "msg_1", f.body)
		return err
	}
	wantErr(t, verify(), nil)
	f.srv.set([]byte("503 upstream down"), http.StatusServiceUnavailable)

	f.clock.Advance(DefaultJWKSCacheTTL + time.Second) // cache expired, refetch fails
	wantErr(t, verify(), nil)
	if got := f.srv.hits.Load(); got != 2 {
		t.Fatalf("hits = %d, want 2 (one failed refetch)", got)
	}
	wantErr(t, verify(), nil) // within the rate limit: no new fetch
	if got := f.srv.hits.Load(); got != 2 {
		t.Fatalf("hits = %d, want 2 (failed fetches are rate-limited)", got)
	}

	f.clock.Advance(MaxJWKSStale - 2*time.Minute) // still within the stale window
	wantErr(t, verify(), nil)

	f.clock.Advance(2 * time.Minute) // stale window over: fail closed
	wantErr(t, verify(), ErrJWKSFetch)

	f.srv.setKeys(t, f.signer.PublicJWK()) // endpoint recovers
	f.clock.Advance(DefaultMinRefreshInterval)
	wantErr(t, verify(), nil)
}

func TestJWKSServerGoneKeepsCachedKeys(t *testing.T) {
	t.Parallel()
	f := setupJWT(t)
	wantErr(t, func() error { _, err := f.verify(f.sign(t, f.claims("msg_1")), "msg_1", f.body); return err }(), nil)
	f.srv.Close() // connection refused from now on
	f.clock.Advance(time.Hour)
	if _, err := f.verify(f.sign(t, f.claims("msg_2")), "msg_2", f.body); err != nil {
		t.Fatalf("cached key stopped working while the JWKS endpoint is down: %v", err)
	}
	// A new key id cannot be learned while the endpoint is down.
	other, _ := NewJWTSigner("rsa-next", testRSAKey())
	c := f.claims("msg_3")
	tok, _ := other.Sign(c)
	f.clock.Advance(DefaultMinRefreshInterval)
	_, err := f.verify(tok, "msg_3", f.body)
	wantErr(t, err, ErrUnknownKeyID)
}

func TestJWKSCacheControl(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cacheControl string
		ttl          time.Duration
	}{
		{"", DefaultJWKSCacheTTL},
		{"public, max-age=120", 2 * time.Minute},
		{"max-age=5", DefaultMinRefreshInterval}, // clamped up
		{"no-store", DefaultMinRefreshInterval},
		{"max-age=999999999", MaxJWKSCacheTTL}, // clamped down
	} {
		t.Run(tc.cacheControl, func(t *testing.T) {
			t.Parallel()
			f := setupJWT(t)
			f.srv.setCacheControl(tc.cacheControl)
			verify := func() {
				t.Helper()
				if _, err := f.verify(f.sign(t, f.claims("msg_1")), "msg_1", f.body); err != nil {
					t.Fatal(err)
				}
			}
			verify()
			f.clock.Advance(tc.ttl - time.Second)
			verify()
			if got := f.srv.hits.Load(); got != 1 {
				t.Fatalf("hits = %d before the cache expired, want 1", got)
			}
			f.clock.Advance(time.Second)
			verify()
			if got := f.srv.hits.Load(); got != 2 {
				t.Fatalf("hits = %d after the cache expired, want 2", got)
			}
		})
	}
}

func TestCacheTTL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   []string
		want time.Duration
	}{
		{nil, DefaultJWKSCacheTTL},
		{[]string{"max-age=600"}, 10 * time.Minute},
		{[]string{`max-age="600"`}, 10 * time.Minute},
		{[]string{"public", "Max-Age=300, must-revalidate"}, 5 * time.Minute},
		{[]string{"max-age=-1"}, DefaultJWKSCacheTTL},
		{[]string{"max-age=abc"}, DefaultJWKSCacheTTL},
		{[]string{"max-age=600, no-cache"}, time.Minute},
		{[]string{"max-age=9223372036854775807"}, MaxJWKSCacheTTL},
	} {
		if got := cacheTTL(tc.in, time.Minute); got != tc.want {
			t.Errorf("cacheTTL(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestJWKSUnknownKidRefetchRateLimited(t *testing.T) {
	t.Parallel()
	f := setupJWT(t)
	if _, err := f.verify(f.sign(t, f.claims("msg_1")), "msg_1", f.body); err != nil {
		t.Fatal(err)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	next, _ := NewJWTSigner("ec-next", ec)
	f2 := setupJWTWith(t, next, WithAlgorithms(AlgRS256, AlgES256))
	f2.srv.setKeys(t, f.signer.PublicJWK())
	tok := func() string { return f2.sign(t, f2.claims("msg_1")) }

	_, err := f2.verify(f.sign(t, f2.claims("msg_1")), "msg_1", f2.body) // warm the cache
	wantErr(t, err, nil)
	_, err = f2.verify(tok(), "msg_1", f2.body) // unknown kid, but the cache was just fetched
	wantErr(t, err, ErrUnknownKeyID)
	if got := f2.srv.hits.Load(); got != 1 {
		t.Fatalf("hits = %d, want 1", got)
	}
	f2.clock.Advance(DefaultMinRefreshInterval)
	_, err = f2.verify(tok(), "msg_1", f2.body) // unknown kid: one refetch
	wantErr(t, err, ErrUnknownKeyID)
	_, err = f2.verify(tok(), "msg_1", f2.body) // again: rate-limited
	wantErr(t, err, ErrUnknownKeyID)
	if got := f2.srv.hits.Load(); got != 2 {
		t.Fatalf("hits = %d, want 2", got)
	}

	// The sender rotates: the new kid is found after the interval.
	f2.srv.setKeys(t, f.signer.PublicJWK(), next.PublicJWK())
	_, err = f2.verify(tok(), "msg_1", f2.body)
	wantErr(t, err, ErrUnknownKeyID)
	f2.clock.Advance(DefaultMinRefreshInterval)
	_, err = f2.verify(tok(), "msg_1", f2.body)
	wantErr(t, err, nil)
	if got := f2.srv.hits.Load(); got != 3 {
		t.Fatalf("hits = %d, want 3", got)
	}
}

func TestJWKSConcurrentFirstFetch(t *testing.T) {
	t.Parallel()
	f := setupJWT(t)
	tok := f.sign(t, f.claims("msg_1"))
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if _, err := f.verify(tok, "msg_1", f.body); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := f.srv.hits.Load(); got != 1 {
		t.Fatalf("hits = %d, want 1 shared fetch", got)
	}
}

func TestJWKSFetchHonoursContext(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	f := setupJWT(t)
	v, err := NewJWKSVerifier(srv.URL, testIssuer, testAudience, WithClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = v.Verify(ctx, hdr("msg_1", "1", f.sign(t, f.claims("msg_1"))), f.body)
	wantErr(t, err, ErrJWKSFetch)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want the context's error wrapped", err)
	}
	// An abandoned fetch does not count against the rate limit.
	v.mu.Lock()
	attempted := !v.lastAttempt.IsZero()
	v.mu.Unlock()
	if attempted {
		t.Fatal("a fetch abandoned by its caller was counted")
	}
}
