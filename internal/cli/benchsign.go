package cli

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/longhook/longhook/internal/procstat"
	"github.com/longhook/longhook/webhook"
)

// signWindow is how long each measurement of the RS256 signing rate runs.
const signWindow = 750 * time.Millisecond

// rs256Meter measures how many RS256 tokens this machine signs per second
// on all cores, with the signer the server uses: the ceiling of JWT-signed
// (dynamic) deliveries.
type rs256Meter struct {
	signer *webhook.JWTSigner
	claims []byte // encoded once: the meter measures signing, not JSON
}

// newRS256Meter signs tokens of the size the run's deliveries carry: the
// registered claims and an event whose data is data.
func newRS256Meter(data []byte) (*rs256Meter, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	signer, err := webhook.NewJWTSigner("bench", key)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	claims, err := json.Marshal(webhook.Claims{
		Issuer: "http://127.0.0.1:8080", Subject: "events/evt_0123456789abcdef", Audience: "http://127.0.0.1:8080/h0",
		IssuedAt: webhook.NewNumericDate(now), ExpiresAt: webhook.NewNumericDate(now.Add(5 * time.Minute)),
		ID: "msg_0123456789abcdef0123456789", BodySHA256: webhook.BodyHash(data),
		Type: "batch.succeeded", Version: "v1", Timestamp: now.UTC().Format(time.RFC3339), Data: data,
	})
	if err != nil {
		return nil, err
	}
	return &rs256Meter{signer: signer, claims: claims}, nil
}

// measure signs on every core for d and returns the rate, the CPU time
// spent and the number of tokens signed.
func (m *rs256Meter) measure(d time.Duration) (float64, time.Duration, int) {
	var n atomic.Int64
	deadline := time.Now().Add(d)
	start, cpu0 := time.Now(), procstat.CPUTime()
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if _, err := m.signer.SignPayload(m.claims); err == nil {
					n.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds(), procstat.CPUTime() - cpu0, int(n.Load())
}
