package webhook

import (
	"context"
	"strconv"
	"testing"
)

func TestReceiver(t *testing.T) {
	t.Parallel()
	f := setupJWT(t)
	raw := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	hv, err := NewVerifier([]string{raw}, WithClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	sec, _ := ParseSecret(raw)
	now := f.clock.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	hmacH := hdr("msg_1", ts, Sign(sec, "msg_1", now, f.body))
	jwtH := hdr("msg_1", ts, f.sign(t, f.claims("msg_1")))
	ctx := context.Background()

	both := &Receiver{HMAC: hv, JWKS: f.v}
	res, err := both.Verify(ctx, hmacH, f.body)
	if err != nil || res.Scheme != SchemeHMAC || res.ID != "msg_1" || !res.Timestamp.Equal(now) || res.Claims != nil {
		t.Fatalf("HMAC: %+v, %v", res, err)
	}
	res, err = both.Verify(ctx, jwtH, f.body)
	if err != nil || res.Scheme != SchemeJWT || res.ID != "msg_1" || !res.Timestamp.Equal(now) || res.Claims.Type != "batch.succeeded" {
		t.Fatalf("JWT: %+v, %v", res, err)
	}

	_, err = (&Receiver{JWKS: f.v}).Verify(ctx, hmacH, f.body)
	wantErr(t, err, ErrSchemeNotAccepted)
	_, err = (&Receiver{HMAC: hv}).Verify(ctx, jwtH, f.body)
	wantErr(t, err, ErrSchemeNotAccepted)

	// Failures of the chosen verifier come through unchanged.
	_, err = both.Verify(ctx, hmacH, []byte("{}"))
	wantErr(t, err, ErrNoMatchingSignature)
	_, err = both.Verify(ctx, jwtH, []byte("{}"))
	wantErr(t, err, ErrBodyHash)

	_, err = both.Verify(ctx, hdr("msg_1", ts, "garbage"), f.body)
	wantErr(t, err, ErrMalformed)
	_, err = both.Verify(ctx, hdr("msg_1", ts, ""), f.body)
	wantErr(t, err, ErrMissingHeader)
}

func TestSchemeOf(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Scheme{
		"v1,abc=":                   SchemeHMAC,
		"v1a,abc v1,def":            SchemeHMAC,
		"eyJh.eyJp.c2ln":            SchemeJWT,
		"eyJh.eyJp.":                SchemeJWT,
		"a.b":                       "",
		"a.b.c.d":                   "",
		"eyJh.ey+p.c2ln":            "",
		"eyJh.eyJp.c2ln=":           "",
		"Bearer eyJh.eyJp.c2ln":     "",
		"":                          "",
		"whsec_MfKQ9r8GKYqrTwjUPD8": "",
	} {
		if got := schemeOf(in); got != want {
			t.Errorf("schemeOf(%q) = %q, want %q", in, got, want)
		}
	}
}
