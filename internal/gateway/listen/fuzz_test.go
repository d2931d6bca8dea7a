package listen

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// FuzzStreamReader feeds arbitrary bytes to the SSE reader of `longhook
// listen`: it never panics, always ends (with io.ErrUnexpectedEOF, a
// too-long line or a dispatch error), and every event's data is made of
// the stream's data lines only.
func FuzzStreamReader(f *testing.F) {
	for _, s := range []string{
		"event: ready\ndata: {\"after\":3}\n\n",
		"event: webhook\ndata: {\"seq\":4,\"webhook_id\":\"msg_1\",\"body\":\"e30=\"}\n\n: keep-alive\n\n",
		"data: a\ndata: b\n\n", "data\n\n", ":\n", "event:\n\n", "\n\n\n", "event: x\r\ndata: y\r\n\r\n", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		lines, events := 0, 0
		err := readEvents(bytes.NewReader(stream), func() { lines++ }, func(event string, data []byte) error {
			events++
			if strings.Contains(event, "\n") {
				t.Fatalf("event name %q spans lines", event)
			}
			if len(data) > len(stream) {
				t.Fatalf("data of %d bytes from a %d-byte stream", len(data), len(stream))
			}
			return nil
		})
		if !errors.Is(err, io.ErrUnexpectedEOF) && (err == nil || !strings.Contains(err.Error(), "too long")) {
			t.Fatalf("stream ended with %v", err)
		}
		if events > lines {
			t.Fatalf("%d events from %d lines", events, lines)
		}
	})
}

// TestStreamReaderStopsOnDispatchError: the first dispatch error ends the
// stream.
func TestStreamReaderStopsOnDispatchError(t *testing.T) {
	t.Parallel()
	stop := errors.New("stop")
	n := 0
	err := readEvents(strings.NewReader("data: 1\n\ndata: 2\n\n"), func() {}, func(string, []byte) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("err %v after %d events", err, n)
	}
}
