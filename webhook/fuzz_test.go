package webhook

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzSignatureHeader checks the webhook-signature entry scanner: it always
// terminates, never yields an entry containing a space, and loses no
// non-space byte.
func FuzzSignatureHeader(f *testing.F) {
	for _, s := range []string{
		"v1,4fDzhQod1CQw83ly0LwffvNaCwTQr1oNJ+Z6Fe+/6L4=",
		"v1a,abc v1,4fDzhQod1CQw83ly0LwffvNaCwTQr1oNJ+Z6Fe+/6L4=",
		"  v1,a   v1,b  ", "", " ", ",", "v1,", ",v1", "v1,a,b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		var joined strings.Builder
		for rest, n := header, 0; rest != ""; n++ {
			if n > len(header) {
				t.Fatal("scanner does not terminate")
			}
			var entry string
			entry, rest = cutEntry(rest)
			if strings.Contains(entry, " ") {
				t.Fatalf("entry %q contains a space", entry)
			}
			joined.WriteString(entry)
		}
		if joined.String() != strings.ReplaceAll(header, " ", "") {
			t.Fatalf("entries %q lose bytes of %q", joined.String(), header)
		}
	})
}

// FuzzVerify feeds arbitrary headers and bodies to the HMAC verifier. It
// must never panic, must always return one of the documented errors, and
// must accept only messages that carry the real signature.
func FuzzVerify(f *testing.F) {
	const raw = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	sec, _ := ParseSecret(raw)
	now := time.Unix(1674087231, 0)
	v, err := NewVerifier([]string{raw, "whsec_c2Vjb25kLXNlY3JldC1rZXktbWF0ZXJpYWwtMzJieXQ="}, WithClock(func() time.Time { return now }))
	if err != nil {
		f.Fatal(err)
	}
	for _, vec := range loadHMACVectors(f) {
		f.Add(vec.ID, vec.Timestamp, vec.Signature, []byte(vec.Body))
	}
	f.Add("msg", "1674087231", "v1,"+strings.Repeat("A", 43)+"=", []byte{})
	f.Add("", "", "", []byte(nil))
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		err := v.VerifyRaw(id, ts, sig, body)
		if err == nil {
			unix, perr := parseUnix(ts)
			if perr != nil {
				t.Fatalf("accepted unparsable timestamp %q", ts)
			}
			want := Sign(sec, id, time.Unix(unix, 0), body)
			secret2, _ := ParseSecret("whsec_c2Vjb25kLXNlY3JldC1rZXktbWF0ZXJpYWwtMzJieXQ=")
			want2 := Sign(secret2, id, time.Unix(unix, 0), body)
			if !strings.Contains(sig, want[3:]) && !strings.Contains(sig, want2[3:]) {
				t.Fatalf("accepted %q without a genuine signature", sig)
			}
			return
		}
		for _, s := range []error{ErrMissingHeader, ErrMalformed, ErrNoMatchingSignature, ErrTimestampTooOld, ErrTimestampTooNew} {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("undocumented error %v", err)
	})
}

// FuzzParseJWS checks the compact JWS parser on arbitrary input.
func FuzzParseJWS(f *testing.F) {
	for _, vec := range loadJWSVectors(f).RFC {
		f.Add(vec.Token)
	}
	f.Add(loadJWSVectors(f).Longhook.Token)
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("..")
	f.Add("e30.e30.e30")
	f.Fuzz(func(t *testing.T, token string) {
		tok, err := parseJWS(token)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if !strings.HasPrefix(token, tok.input+".") || strings.Count(tok.input, ".") != 1 {
			t.Fatalf("signing input %q is not the first two parts of %q", tok.input, token)
		}
	})
}

// FuzzJWKSVerify feeds arbitrary tokens to a JWKS verifier whose cache is
// already filled (no network). It must never panic and must never accept a
// token that the real key did not sign.
func FuzzJWKSVerify(f *testing.F) {
	vec := loadJWSVectors(f).Longhook
	key := ed25519.NewKeyFromSeed(b64dec(f, vec.Seed))
	v, err := NewJWKSVerifier("https://jwks.invalid/jwks.json", vec.Issuer, vec.Audience,
		WithAlgorithms(AlgRS256, AlgES256, AlgEdDSA), WithClock(func() time.Time { return time.Unix(vec.Now, 0) }))
	if err != nil {
		f.Fatal(err)
	}
	v.keys = map[string]crypto.PublicKey{vec.Kid: key.Public()}
	v.keyAlgs = map[string]string{}
	v.freshUntil = time.Unix(vec.Now, 0).Add(time.Hour)
	v.lastAttempt = time.Unix(vec.Now, 0) // rate limit: no fetch is ever attempted

	f.Add(vec.WebhookID, vec.Token, []byte(vec.Body))
	for _, r := range loadJWSVectors(f).RFC {
		f.Add(vec.WebhookID, r.Token, []byte(vec.Body))
	}
	f.Add("msg", "eyJhbGciOiJub25lIiwia2lkIjoicmZjODAzNy1hMSJ9.e30.", []byte("{}"))
	f.Fuzz(func(t *testing.T, id, token string, body []byte) {
		c, err := v.VerifyRaw(context.Background(), id, token, body)
		if err != nil {
			return
		}
		// Accepted: it must be bound to this message.
		if c.ID != id || c.BodySHA256 != BodyHash(body) || c.Issuer != vec.Issuer {
			t.Fatalf("accepted inconsistent token %q", token)
		}
	})
}

// FuzzJWK checks JWK parsing: no panics, errors wrap ErrInvalidKey, and a
// parsed key converts back to an equivalent JWK.
func FuzzJWK(f *testing.F) {
	for _, vec := range loadJWSVectors(f).RFC {
		f.Add(string(mustJSON(f, vec.JWK)))
	}
	f.Add(`{"kty":"RSA","n":"AQAB","e":"AQAB"}`)
	f.Add(`{"kty":"EC","crv":"P-256","x":"","y":""}`)
	f.Fuzz(func(t *testing.T, data string) {
		var k JWK
		if json.Unmarshal([]byte(data), &k) != nil {
			return
		}
		pub, err := k.PublicKey()
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("error %v does not wrap ErrInvalidKey", err)
			}
			return
		}
		back, err := NewJWK(k.Kid, pub)
		if err != nil {
			t.Fatalf("NewJWK of a parsed key: %v", err)
		}
		again, err := back.PublicKey()
		if err != nil || !again.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
			t.Fatalf("key does not round-trip: %v", err)
		}
	})
}
