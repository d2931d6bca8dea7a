package engine

import (
	"bytes"
	"context"
	"net"
	"testing"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/webhook"
)

// BenchmarkSend is one signed attempt after another, on one kept-alive
// connection, to serve204: the sender's own work per attempt (and the
// receiver's, which does not change), without the engine or a store.
//
//	go test -run '^$' -bench 'Send$' -benchmem ./internal/engine
func BenchmarkSend(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := serve204(ln)
	defer func() { ln.Close(); <-done }()
	s := NewSender(SenderConfig{Policy: core.AddressPolicy{Dev: true}})
	defer s.Abort()
	secret, err := webhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		b.Fatal(err)
	}
	uri := "http://" + ln.Addr().String() + "/hook"
	body := bytes.Repeat([]byte("x"), 600)
	var st stampCache
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		now := core.SystemClock{}.Now()
		id := "msg_2Yh3Kq8pTn4vXw9LmZ0aBcDeFgH"
		headers := [][2]string{
			{webhook.HeaderID, id},
			{webhook.HeaderTimestamp, st.format(now.Unix())},
			{webhook.HeaderSignature, webhook.Sign(secret, id, now, body)},
		}
		if res := s.send(ctx, uri, body, headers); res.StatusCode != 204 {
			b.Fatalf("status %d: %s", res.StatusCode, res.Err)
		}
	}
}
