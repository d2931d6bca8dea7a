package webhook

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"
)

// testRSAKey returns one 2048-bit RSA key shared by the whole test binary:
// generating it is the slowest step of the suite.
var testRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// fakeClock is a settable clock for WithClock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// sentinels maps names used in testdata to errors.
var sentinels = map[string]error{
	"ErrMissingHeader":       ErrMissingHeader,
	"ErrMalformed":           ErrMalformed,
	"ErrInvalidSignature":    ErrInvalidSignature,
	"ErrNoMatchingSignature": ErrNoMatchingSignature,
	"ErrTimestampTooOld":     ErrTimestampTooOld,
	"ErrTimestampTooNew":     ErrTimestampTooNew,
	"ErrInvalidKey":          ErrInvalidKey,
	"ErrUnknownKeyID":        ErrUnknownKeyID,
	"ErrAlgorithmNotAllowed": ErrAlgorithmNotAllowed,
	"ErrIssuer":              ErrIssuer,
	"ErrAudience":            ErrAudience,
	"ErrTokenExpired":        ErrTokenExpired,
	"ErrTokenNotYetValid":    ErrTokenNotYetValid,
	"ErrBodyHash":            ErrBodyHash,
	"ErrTokenID":             ErrTokenID,
	"ErrJWKSFetch":           ErrJWKSFetch,
	"ErrSchemeNotAccepted":   ErrSchemeNotAccepted,
}

// wantErr fails t unless err matches want (nil means success expected).
func wantErr(t *testing.T, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("error = %v, want errors.Is(%v)", err, want)
	}
}

// hdr builds webhook headers; empty values are left out.
func hdr(id, ts, sig string) http.Header {
	h := http.Header{}
	if id != "" {
		h.Set(HeaderID, id)
	}
	if ts != "" {
		h.Set(HeaderTimestamp, ts)
	}
	if sig != "" {
		h.Set(HeaderSignature, sig)
	}
	return h
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
