package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

type hmacVector struct {
	Name      string   `json:"name"`
	Secrets   []string `json:"secrets"`
	ID        string   `json:"id"`
	Timestamp string   `json:"timestamp"`
	Now       string   `json:"now"`
	Body      string   `json:"body"`
	Signature string   `json:"signature"`
	Signed    bool     `json:"signed"`
	Error     string   `json:"error"`
}

func loadHMACVectors(t testing.TB) []hmacVector {
	t.Helper()
	data, err := os.ReadFile("testdata/hmac_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct{ Vectors []hmacVector }
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	return file.Vectors
}

func unixOf(t testing.TB, s string) time.Time {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("bad unix time %q", s)
	}
	return time.Unix(n, 0)
}

func TestHMACVectors(t *testing.T) {
	t.Parallel()
	for _, vec := range loadHMACVectors(t) {
		t.Run(vec.Name, func(t *testing.T) {
			t.Parallel()
			want, ok := sentinels[vec.Error]
			if vec.Error != "" && !ok {
				t.Fatalf("unknown error name %q", vec.Error)
			}
			now := vec.Now
			if now == "" {
				now = vec.Timestamp
			}
			v, err := NewVerifier(vec.Secrets, WithClock(func() time.Time { return unixOf(t, now) }))
			if err != nil {
				t.Fatal(err)
			}
			body := []byte(vec.Body)
			wantErr(t, v.Verify(hdr(vec.ID, vec.Timestamp, vec.Signature), body), want)
			wantErr(t, v.VerifyRaw(vec.ID, vec.Timestamp, vec.Signature, body), want)

			if vec.Signed {
				var secrets []Secret
				for _, s := range vec.Secrets {
					sec, err := ParseSecret(s)
					if err != nil {
						t.Fatal(err)
					}
					secrets = append(secrets, sec)
				}
				ts := unixOf(t, vec.Timestamp)
				if got := SignAll(secrets, vec.ID, ts, body); got != vec.Signature {
					t.Errorf("SignAll = %q, want %q", got, vec.Signature)
				}
				if got := Sign(secrets[0], vec.ID, ts, body); !strings.HasPrefix(vec.Signature, got) {
					t.Errorf("Sign = %q, want prefix of %q", got, vec.Signature)
				}
			}
		})
	}
}

func TestParseSecret(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", true},
		{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", true},
		{"whsec_c2Vjb25kLXNlY3JldC1rZXktbWF0ZXJpYWwtMzJieXQ=", true},
		{"whsec_c2Vjb25kLXNlY3JldC1rZXktbWF0ZXJpYWwtMzJieXQ", true}, // unpadded
		{"whsec_", false},
		{"", false},
		{"whsec_not base64!", false},
		{"whsec_c2Vjb25k=LXNl", false},
	} {
		_, err := ParseSecret(tc.in)
		if tc.ok != (err == nil) {
			t.Errorf("ParseSecret(%q) error = %v, want ok=%v", tc.in, err, tc.ok)
		}
		if err != nil {
			wantErr(t, err, ErrInvalidKey)
			if tc.in != "" && strings.Contains(err.Error(), tc.in) {
				t.Errorf("error %q echoes the secret", err)
			}
		}
	}
}

// TestParseSecretSurroundingSpace: a secret read from a file or an env file
// keeps a newline or spaces around it; they are not part of the base64 and
// are ignored. A padded secret (every one NewSecret makes) with a trailing
// newline was refused, an unpadded one accepted.
func TestParseSecretSurroundingSpace(t *testing.T) {
	t.Parallel()
	ts := time.Unix(1674087231, 0)
	for _, clean := range []string{"whsec_c2Vjb25kLXNlY3JldC1rZXktbWF0ZXJpYWwtMzJieXQ=", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"} {
		want, err := ParseSecret(clean)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range []string{clean + "\n", clean + "\r\n", clean + " ", " \t" + clean} {
			got, err := ParseSecret(in)
			if err != nil {
				t.Errorf("ParseSecret(%q): %v", in, err)
				continue
			}
			if Sign(got, "msg_1", ts, nil) != Sign(want, "msg_1", ts, nil) {
				t.Errorf("ParseSecret(%q) is another key than %q", in, clean)
			}
		}
	}
}

func TestNewSecret(t *testing.T) {
	t.Parallel()
	a, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewSecret()
	if a == b || !strings.HasPrefix(a, SecretPrefix) || len(a) != len(SecretPrefix)+44 {
		t.Fatalf("NewSecret = %q, %q", a, b)
	}
	sec, err := ParseSecret(a)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier([]string{a})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	body := []byte(`{"type":"webhook.ping"}`)
	sig := Sign(sec, "msg_1", now, body)
	wantErr(t, v.VerifyRaw("msg_1", strconv.FormatInt(now.Unix(), 10), sig, body), nil)
	if s := fmt.Sprintf("%v %+v %#v", sec, sec, sec); strings.Contains(s, a[len(SecretPrefix):]) {
		t.Fatalf("formatting a Secret leaks it: %s", s)
	}
}

func TestNewVerifierErrors(t *testing.T) {
	t.Parallel()
	good := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	for name, tc := range map[string]struct {
		secrets []string
		opts    []Option
	}{
		"no secrets":         {nil, nil},
		"bad secret":         {[]string{good, "whsec_%%%"}, nil},
		"negative tolerance": {[]string{good}, []Option{WithTolerance(-time.Second)}},
		// Zero or sub-second tolerances refused nearly every message:
		// they do not turn the timestamp check off.
		"zero tolerance":       {[]string{good}, []Option{WithTolerance(0)}},
		"sub-second tolerance": {[]string{good}, []Option{WithTolerance(500 * time.Millisecond)}},
		"nil clock":            {[]string{good}, []Option{WithClock(nil)}},
	} {
		if _, err := NewVerifier(tc.secrets, tc.opts...); err == nil {
			t.Errorf("%s: NewVerifier succeeded", name)
		}
	}
	// Options meant for the JWKS verifier are ignored, not rejected.
	if _, err := NewVerifier([]string{good}, WithHTTPClient(http.DefaultClient), nil); err != nil {
		t.Fatal(err)
	}
}

// hmacSetup returns a verifier with a fake clock, a secret and a signed
// message whose timestamp is the clock's time.
func hmacSetup(t *testing.T, opts ...Option) (*Verifier, *fakeClock, Secret, http.Header, []byte) {
	t.Helper()
	raw := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	clock := newFakeClock(time.Unix(1674087231, 0))
	v, err := NewVerifier([]string{raw}, append([]Option{WithClock(clock.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	sec, _ := ParseSecret(raw)
	body := []byte(`{"type":"batch.succeeded"}`)
	h := hdr("msg_1", "1674087231", Sign(sec, "msg_1", clock.Now(), body))
	return v, clock, sec, h, body
}

func TestVerifyMissingHeaders(t *testing.T) {
	t.Parallel()
	v, _, _, h, body := hmacSetup(t)
	for _, name := range []string{HeaderID, HeaderTimestamp, HeaderSignature} {
		h2 := h.Clone()
		h2.Del(name)
		err := v.Verify(h2, body)
		wantErr(t, err, ErrMissingHeader)
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	wantErr(t, v.Verify(nil, body), ErrMissingHeader)
}

func TestVerifyLowercaseHeaderMap(t *testing.T) {
	t.Parallel()
	v, _, _, h, body := hmacSetup(t)
	raw := http.Header{ // built by hand, not canonicalized
		HeaderID:        h.Values(HeaderID),
		HeaderTimestamp: h.Values(HeaderTimestamp),
		HeaderSignature: h.Values(HeaderSignature),
	}
	wantErr(t, v.Verify(raw, body), nil)
}

func TestVerifyTolerance(t *testing.T) {
	t.Parallel()
	v, clock, _, h, body := hmacSetup(t, WithTolerance(time.Minute))
	clock.Advance(time.Minute)
	wantErr(t, v.Verify(h, body), nil)
	clock.Advance(time.Second)
	wantErr(t, v.Verify(h, body), ErrTimestampTooOld)
	clock.Advance(-2*time.Minute - 2*time.Second)
	wantErr(t, v.Verify(h, body), ErrTimestampTooNew)

	// A forgery reports the signature, not the time, even when stale.
	h.Set(HeaderSignature, "v1,"+strings.Repeat("A", 43)+"=")
	wantErr(t, v.Verify(h, body), ErrNoMatchingSignature)
	wantErr(t, v.Verify(h, body), ErrInvalidSignature)
	if errors.Is(v.Verify(h, body), ErrTimestampTooNew) {
		t.Fatal("forgery reported as a timestamp problem")
	}
}

func TestVerifyMalformedTimestamp(t *testing.T) {
	t.Parallel()
	v, _, _, h, body := hmacSetup(t)
	for _, ts := range []string{"-1674087231", "+1674087231", "1674087231.0", "abc", " 1674087231", "99999999999999999999",
		"01674087231", "0001674087231"} { // zero-padded (issue 13, defect 12)
		h.Set(HeaderTimestamp, ts)
		wantErr(t, v.Verify(h, body), ErrMalformed)
	}
}

// TestVerifyStrictBase64 (issue 13, defect 5): each MAC has one accepted
// spelling. The last base64 digit before "=" carries two unused bits; the
// three other digits that differ only there decode to the same MAC with a
// lenient decoder, and must be refused.
func TestVerifyStrictBase64(t *testing.T) {
	t.Parallel()
	v, _, _, h, body := hmacSetup(t)
	sig := h.Get(HeaderSignature)
	if err := v.Verify(h, body); err != nil {
		t.Fatal(err)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	last := strings.IndexByte(alphabet, sig[len(sig)-2])
	for bits := 1; bits < 4; bits++ {
		variant := sig[:len(sig)-2] + string(alphabet[last^bits]) + "="
		h.Set(HeaderSignature, variant)
		wantErr(t, v.Verify(h, body), ErrNoMatchingSignature)
	}
}

func TestVerifyManySecrets(t *testing.T) {
	t.Parallel()
	var raws []string
	var secs []Secret
	for range stackSecrets + 3 {
		s, err := NewSecret()
		if err != nil {
			t.Fatal(err)
		}
		sec, _ := ParseSecret(s)
		raws, secs = append(raws, s), append(secs, sec)
	}
	v, err := NewVerifier(raws)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte("{}")
	for i, sec := range secs {
		if err := v.VerifyRaw("msg_x", ts, Sign(sec, "msg_x", now, body), body); err != nil {
			t.Fatalf("secret %d: %v", i, err)
		}
	}
	all := SignAll(secs, "msg_x", now, body)
	if n := len(strings.Split(all, " ")); n != len(secs) {
		t.Fatalf("SignAll has %d entries, want %d", n, len(secs))
	}
	wantErr(t, v.VerifyRaw("msg_x", ts, all, body), nil)
}

func TestSignAllEmpty(t *testing.T) {
	t.Parallel()
	if got := SignAll(nil, "msg", time.Now(), nil); got != "" {
		t.Fatalf("SignAll(nil) = %q", got)
	}
}

func TestZeroSecretPanics(t *testing.T) {
	t.Parallel()
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "zero Secret") {
			t.Fatalf("recover() = %v", r)
		}
	}()
	Sign(Secret{}, "msg", time.Now(), nil)
}

func TestSignConcurrent(t *testing.T) {
	t.Parallel()
	sec, _ := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	body := []byte(`{"type":"batch.succeeded","version":"v1","timestamp":"2026-05-05T12:00:00Z","data":{"id":"batches/abc123","output_file_uri":"files/batch-abc123"}}`)
	ts := time.Unix(1674087231, 0)
	const want = "v1,4fDzhQod1CQw83ly0LwffvNaCwTQr1oNJ+Z6Fe+/6L4="
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for range 200 {
				if got := Sign(sec, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", ts, body); got != want {
					t.Errorf("goroutine %d: Sign = %q", i, got)
					return
				}
				// Interleave other ids so pooled scratch buffers are reused.
				Sign(sec, strings.Repeat("x", i*50), ts, body)
			}
		})
	}
	wg.Wait()
}

func TestAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	sec, _ := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	sec2, _ := ParseSecret("whsec_c2Vjb25kLXNlY3JldC1rZXktbWF0ZXJpYWwtMzJieXQ=")
	v, _ := NewVerifier([]string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, WithClock(func() time.Time { return time.Unix(1674087231, 0) }))
	ts := time.Unix(1674087231, 0)
	body := []byte(`{"type":"batch.succeeded"}`)
	sig := Sign(sec, "msg_1", ts, body)
	h := hdr("msg_1", "1674087231", sig)
	buf := make([]byte, 0, 128)
	for _, tc := range []struct {
		name string
		max  float64
		fn   func()
	}{
		{"AppendSignature", 0, func() { buf = AppendSignature(buf[:0], sec, "msg_1", ts, body) }},
		{"Sign", 1, func() { Sign(sec, "msg_1", ts, body) }},
		{"SignAll", 1, func() { SignAll([]Secret{sec, sec2}, "msg_1", ts, body) }},
		{"Verify", 0, func() {
			if v.Verify(h, body) != nil {
				panic("verify failed")
			}
		}},
	} {
		if got := testing.AllocsPerRun(100, tc.fn); got > tc.max {
			t.Errorf("%s: %v allocations, want <= %v", tc.name, got, tc.max)
		}
	}
}

// TestVerifyNoMatchSaysWhy: a signature that does not match says whether
// there was a v1 entry to check at all and, if so, what usually differs,
// so a receiver's log tells a wrong secret or a re-encoded body from a
// sender of another scheme (the error was a bare "no matching signature").
func TestVerifyNoMatchSaysWhy(t *testing.T) {
	t.Parallel()
	now := time.Unix(1674087231, 0)
	v, err := NewVerifier([]string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ParseSecret("whsec_c2Vjb25kLXNlY3JldC1rZXktbWF0ZXJpYWwtMzJieXQ=")
	body := []byte(`{"type":"batch.succeeded"}`)
	for _, tc := range []struct{ name, sig, want string }{
		{"wrong secret", Sign(other, "msg_1", now, body), "1 v1 signature(s) checked against 1 secret(s)"},
		{"two entries", Sign(other, "msg_1", now, body) + " " + Sign(other, "msg_1", now, body), "2 v1 signature(s)"},
		{"only v1a", "v1a,c2ln", "no v1 entry"},
		{"v1 not base64", "v1,not-a-mac", "no v1 entry"},
	} {
		err := v.Verify(hdr("msg_1", "1674087231", tc.sig), body)
		if !errors.Is(err, ErrNoMatchingSignature) || !errors.Is(err, ErrInvalidSignature) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrNoMatchingSignature saying %q", tc.name, err, tc.want)
		}
	}
}
