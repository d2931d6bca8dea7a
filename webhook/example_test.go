package webhook_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/longhook/longhook/webhook"
)

// The product's test vector: a batch.succeeded event.
const (
	exampleSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	exampleID     = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
	exampleBody   = `{"type":"batch.succeeded","version":"v1","timestamp":"2026-05-05T12:00:00Z","data":{"id":"batches/abc123","output_file_uri":"files/batch-abc123"}}`
)

func ExampleSign() {
	secret, err := webhook.ParseSecret(exampleSecret)
	if err != nil {
		log.Fatal(err)
	}
	ts := time.Unix(1674087231, 0)
	fmt.Println(webhook.Sign(secret, exampleID, ts, []byte(exampleBody)))
	// Output: v1,4fDzhQod1CQw83ly0LwffvNaCwTQr1oNJ+Z6Fe+/6L4=
}

// During a secret rotation the sender signs with both secrets; receivers
// configured with either one accept the message.
func ExampleSignAll() {
	oldSecret, _ := webhook.ParseSecret(exampleSecret)
	newSecret, _ := webhook.ParseSecret("whsec_c2Vjb25kLXNlY3JldC1rZXktbWF0ZXJpYWwtMzJieXQ=")
	ts := time.Unix(1674087231, 0)
	sig := webhook.SignAll([]webhook.Secret{oldSecret, newSecret}, exampleID, ts, []byte(exampleBody))
	for _, entry := range strings.Fields(sig) {
		fmt.Println(entry)
	}
	// Output:
	// v1,4fDzhQod1CQw83ly0LwffvNaCwTQr1oNJ+Z6Fe+/6L4=
	// v1,do4Yfb+ELc82/GCtcIcpTuDPKrDUME3p9j3W5itphic=
}

// A sender's delivery loop reuses one buffer for the header value.
func ExampleAppendSignature() {
	secret, _ := webhook.ParseSecret(exampleSecret)
	buf := make([]byte, 0, 64)
	for attempt, ts := range []int64{1674087231, 1674087236} {
		buf = webhook.AppendSignature(buf[:0], secret, exampleID, time.Unix(ts, 0), []byte(exampleBody))
		fmt.Printf("attempt %d: %s\n", attempt+1, buf)
	}
	// Output:
	// attempt 1: v1,4fDzhQod1CQw83ly0LwffvNaCwTQr1oNJ+Z6Fe+/6L4=
	// attempt 2: v1,1P+kamT3C7TnwNydyfn4aydrO6j0d9tT/POjTazIOkk=
}

func ExampleNewSecret() {
	s, err := webhook.NewSecret()
	if err != nil {
		log.Fatal(err)
	}
	_, err = webhook.ParseSecret(s)
	fmt.Println(strings.HasPrefix(s, "whsec_"), len(s), err)
	// Output: true 50 <nil>
}

// A receiving handler: read the raw body, verify, then decode.
func ExampleVerifier_Verify() {
	verifier, err := webhook.NewVerifier([]string{exampleSecret},
		// Tests pin the clock; production code leaves it out.
		webhook.WithClock(func() time.Time { return time.Unix(1674087231+10, 0) }))
	if err != nil {
		log.Fatal(err)
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		if err := verifier.Verify(r.Header, body); err != nil {
			switch {
			case errors.Is(err, webhook.ErrTimestampTooOld):
				fmt.Println("rejected: replay or stale retry")
			case errors.Is(err, webhook.ErrInvalidSignature):
				fmt.Println("rejected: bad signature")
			default:
				fmt.Println("rejected:", err)
			}
			http.Error(w, "invalid webhook", http.StatusUnauthorized)
			return
		}
		var event struct{ Type string }
		_ = json.Unmarshal(body, &event)
		fmt.Println("accepted", r.Header.Get(webhook.HeaderID), event.Type)
	})

	send := func(ts, sig, body string) {
		req := httptest.NewRequest(http.MethodPost, "/hooks", strings.NewReader(body))
		req.Header.Set(webhook.HeaderID, exampleID)
		req.Header.Set(webhook.HeaderTimestamp, ts)
		req.Header.Set(webhook.HeaderSignature, sig)
		handler.ServeHTTP(httptest.NewRecorder(), req)
	}
	send("1674087231", "v1,4fDzhQod1CQw83ly0LwffvNaCwTQr1oNJ+Z6Fe+/6L4=", exampleBody)
	send("1674087231", "v1,4fDzhQod1CQw83ly0LwffvNaCwTQr1oNJ+Z6Fe+/6L4=", strings.Replace(exampleBody, "succeeded", "failed", 1))
	send("1674087231", "", exampleBody)
	// Output:
	// accepted msg_2KWPBgLlAfxdpx2AI54pPJ85f4W batch.succeeded
	// rejected: bad signature
	// rejected: webhook: missing header "webhook-signature"
}

// The sender publishes its public key as a JWKS and signs each delivery
// with a JWT; the receiver verifies it against the JWKS.
func ExampleJWKSVerifier_Verify() {
	// Sender side. Real senders use an RSA key (RS256 is the default); an
	// Ed25519 key from a fixed seed keeps this example deterministic.
	seed := sha256.Sum256([]byte("example key"))
	signer, err := webhook.NewJWTSigner("key-2026-05", ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		log.Fatal(err)
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		_ = json.NewEncoder(w).Encode(webhook.JWKS{Keys: []webhook.JWK{signer.PublicJWK()}})
	}))
	defer jwks.Close()

	now := time.Date(2026, 5, 5, 12, 0, 1, 0, time.UTC)
	body := []byte(exampleBody)
	token, err := signer.Sign(webhook.Claims{
		Issuer:     "https://longhook.example",
		Subject:    "batches/abc123",
		Audience:   "https://receiver.example/hooks",
		IssuedAt:   webhook.NewNumericDate(now),
		ExpiresAt:  webhook.NewNumericDate(now.Add(5 * time.Minute)),
		ID:         exampleID,
		BodySHA256: webhook.BodyHash(body),
		Type:       "batch.succeeded",
		Version:    "v1",
		Timestamp:  "2026-05-05T12:00:00Z",
		Data:       json.RawMessage(`{"id":"batches/abc123","output_file_uri":"files/batch-abc123"}`),
	})
	if err != nil {
		log.Fatal(err)
	}
	h := http.Header{}
	h.Set(webhook.HeaderID, exampleID)
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(webhook.HeaderSignature, token)

	// Receiver side: create once, share across requests.
	verifier, err := webhook.NewJWKSVerifier(jwks.URL, "https://longhook.example", "https://receiver.example/hooks",
		webhook.WithAlgorithms(webhook.AlgEdDSA),
		webhook.WithClock(func() time.Time { return now }))
	if err != nil {
		log.Fatal(err)
	}
	claims, err := verifier.Verify(context.Background(), h, body)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(claims.Type, claims.Subject, string(claims.Data))

	_, err = verifier.Verify(context.Background(), h, []byte(`{"type":"batch.failed"}`))
	fmt.Println(errors.Is(err, webhook.ErrBodyHash))
	// Output:
	// batch.succeeded batches/abc123 {"id":"batches/abc123","output_file_uri":"files/batch-abc123"}
	// true
}

func ExampleNewJWK() {
	seed := sha256.Sum256([]byte("example key"))
	pub := ed25519.NewKeyFromSeed(seed[:]).Public()
	k, err := webhook.NewJWK("key-2026-05", pub)
	if err != nil {
		log.Fatal(err)
	}
	out, _ := json.Marshal(webhook.JWKS{Keys: []webhook.JWK{k}})
	fmt.Println(string(out))
	// Output: {"keys":[{"kty":"OKP","alg":"EdDSA","use":"sig","kid":"key-2026-05","crv":"Ed25519","x":"asryM24RdYIKemiHPekWu_v7aATznCmFYaaPThGmEqY"}]}
}

// One endpoint that accepts both static (HMAC) and dynamic (JWT) webhooks.
func ExampleReceiver_Verify() {
	hmacVerifier, err := webhook.NewVerifier([]string{exampleSecret},
		webhook.WithClock(func() time.Time { return time.Unix(1674087231, 0) }))
	if err != nil {
		log.Fatal(err)
	}
	// JWKS is left nil here: this endpoint refuses JWTs.
	r := &webhook.Receiver{HMAC: hmacVerifier}

	h := http.Header{}
	h.Set(webhook.HeaderID, exampleID)
	h.Set(webhook.HeaderTimestamp, "1674087231")
	h.Set(webhook.HeaderSignature, "v1,4fDzhQod1CQw83ly0LwffvNaCwTQr1oNJ+Z6Fe+/6L4=")
	res, err := r.Verify(context.Background(), h, []byte(exampleBody))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Scheme, res.ID, res.Timestamp.UTC().Format(time.RFC3339))

	h.Set(webhook.HeaderSignature, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
	_, err = r.Verify(context.Background(), h, []byte(exampleBody))
	fmt.Println(errors.Is(err, webhook.ErrSchemeNotAccepted))
	// Output:
	// hmac-v1 msg_2KWPBgLlAfxdpx2AI54pPJ85f4W 2023-01-19T00:13:51Z
	// true
}

// A whole receiver: Handler reads and verifies the request, and answers
// 2xx only once fn has done its work (here, printed it), so a failure makes
// the sender retry instead of losing the message.
func ExampleReceiver_Handler() {
	verifier, err := webhook.NewVerifier([]string{exampleSecret},
		// Tests pin the clock; production code leaves it out.
		webhook.WithClock(func() time.Time { return time.Unix(1674087231, 0) }))
	if err != nil {
		log.Fatal(err)
	}
	r := &webhook.Receiver{HMAC: verifier}
	handler := r.Handler(func(ctx context.Context, res *webhook.Result, body []byte) error {
		var event struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(body, &event); err != nil {
			return err
		}
		// In production: in one transaction, skip res.ID if it is already
		// recorded, else do the work and record res.ID.
		fmt.Println("handled", res.ID, event.Type)
		return nil
	})
	// http.Handle("/hooks", handler)

	send := func(sig string) {
		req := httptest.NewRequest(http.MethodPost, "/hooks", strings.NewReader(exampleBody))
		req.Header.Set(webhook.HeaderID, exampleID)
		req.Header.Set(webhook.HeaderTimestamp, "1674087231")
		req.Header.Set(webhook.HeaderSignature, sig)
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		fmt.Println(strings.TrimSpace(strconv.Itoa(w.Code) + " " + w.Body.String()))
	}
	send("v1,4fDzhQod1CQw83ly0LwffvNaCwTQr1oNJ+Z6Fe+/6L4=")
	send("v1,AAAAhQod1CQw83ly0LwffvNaCwTQr1oNJ+Z6Fe+/6L4=")
	// Output:
	// handled msg_2KWPBgLlAfxdpx2AI54pPJ85f4W batch.succeeded
	// 204
	// 401 webhook: no matching signature: 1 v1 signature(s) checked against 1 secret(s): another secret, or the id, timestamp or body differ from what was signed (verify the raw body as received)
}
