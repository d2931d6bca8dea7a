package engine

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"testing"

	"github.com/longhook/longhook/internal/core"
)

// A 2xx whose body stops short of its Content-Length (the receiver closed
// the connection) is a success, with the bytes that came recorded: the
// status line is the receiver's answer (docs/contract.md §6), and another
// attempt would hand the event over twice. A decision, pinned here.
func TestSenderCutShortBodyIsSuccess(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"))
			}()
		}
	}()
	s := devSender(t, SenderConfig{})
	res := s.Send(context.Background(), Request{URI: "http://" + ln.Addr().String() + "/h", Body: []byte(`{}`)})
	if _, ok := res.Outcome.(core.Success); !ok || res.StatusCode != 200 || string(res.Response) != "short" {
		t.Fatalf("cut-short 200: outcome %T, status %d, error %q, response %q; want a success recording %q",
			res.Outcome, res.StatusCode, res.Err, res.Response, "short")
	}
}
