package webhook

import (
	"context"
	"testing"
	"time"
)

var benchBody = []byte(`{"type":"batch.succeeded","version":"v1","timestamp":"2026-05-05T12:00:00Z","data":{"id":"batches/abc123","output_file_uri":"files/batch-abc123"}}`)

func benchSecrets(b *testing.B) []Secret {
	b.Helper()
	s1, err := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		b.Fatal(err)
	}
	s2, _ := ParseSecret("whsec_c2Vjb25kLXNlY3JldC1rZXktbWF0ZXJpYWwtMzJieXQ=")
	return []Secret{s1, s2}
}

func BenchmarkSign(b *testing.B) {
	sec := benchSecrets(b)[0]
	ts := time.Unix(1674087231, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	for b.Loop() {
		Sign(sec, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", ts, benchBody)
	}
}

func BenchmarkSignAll2(b *testing.B) {
	secs := benchSecrets(b)
	ts := time.Unix(1674087231, 0)
	b.ReportAllocs()
	for b.Loop() {
		SignAll(secs, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", ts, benchBody)
	}
}

func BenchmarkVerify(b *testing.B) {
	v, err := NewVerifier([]string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		WithClock(func() time.Time { return time.Unix(1674087231, 0) }))
	if err != nil {
		b.Fatal(err)
	}
	h := hdr("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "1674087231", "v1,4fDzhQod1CQw83ly0LwffvNaCwTQr1oNJ+Z6Fe+/6L4=")
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(h, benchBody); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJWTSignRS256(b *testing.B) {
	s, err := NewJWTSigner(testKid, testRSAKey())
	if err != nil {
		b.Fatal(err)
	}
	c := Claims{Issuer: testIssuer, Audience: testAudience, IssuedAt: 1778068800, ExpiresAt: 1778069100,
		ID: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", BodySHA256: BodyHash(benchBody), Type: "batch.succeeded"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJWKSVerify(b *testing.B) {
	f := setupJWT(b)
	token, err := f.signer.Sign(f.claims("msg_1"))
	if err != nil {
		b.Fatal(err)
	}
	h := hdr("msg_1", "1778068800", token)
	ctx := context.Background()
	if _, err := f.v.Verify(ctx, h, f.body); err != nil { // warm the cache
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.v.Verify(ctx, h, f.body); err != nil {
			b.Fatal(err)
		}
	}
}
