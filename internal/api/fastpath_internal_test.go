package api

import (
	"bufio"
	"bytes"
	"maps"
	"net/http"
	"slices"
	"testing"
)

// Whatever head the fast path takes, net/http reads it too, as the same
// request: method, target, Host, Content-Length, Close and every header.
// (Heads it does not take go to net/http itself: nothing to compare.)
func FuzzFastPathHead(f *testing.F) {
	for _, s := range []string{
		"POST /v1beta/events HTTP/1.1\r\nHost: example.com\r\nx-goog-api-key: k\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
		"POST /v1/events:batchPublish HTTP/1.1\r\nhost: h:1\r\nContent-Length: 0\r\nConnection: close\r\nX-A:  b \r\nx-a: c\r\n\r\n",
		"POST /v1alpha/events HTTP/1.1\r\nHost: [::1]:80\r\nContent-Length: 10\r\nIdempotency-Key: k\r\nTraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n",
		"POST /v1beta/events HTTP/1.1\r\nHost: x\r\nContent-Length: 01\r\nConnection: Keep-Alive\r\n\r\n",
		"POST /v1beta/events HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nX-Empty:\r\nX-Tab:\tv\t\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, verdict := scanHead(b)
		if verdict != headHot {
			return
		}
		want, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b[:n])))
		if err != nil {
			t.Fatalf("the fast path takes %q, net/http refuses it: %v", b[:n], err)
		}
		c := &fastConn{tmpl: http.Request{Method: http.MethodPost, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}}
		got, ok := c.parse(string(b[:n]))
		if !ok {
			t.Fatalf("parse refuses what scanHead took: %q", b[:n])
		}
		delete(want.Header, "Host") // as net/http's server does
		if got.Method != want.Method || got.Proto != want.Proto || got.RequestURI != want.RequestURI || got.URL.Path != want.URL.Path ||
			got.URL.RawQuery != "" || got.Host != want.Host || got.ContentLength != want.ContentLength ||
			got.Close != want.Close || !maps.EqualFunc(got.Header, want.Header, slices.Equal) {
			t.Fatalf("%q:\nfast path %s %s host %q length %d close %v %v\nnet/http  %s %s host %q length %d close %v %v",
				b[:n], got.Method, got.RequestURI, got.Host, got.ContentLength, got.Close, got.Header,
				want.Method, want.RequestURI, want.Host, want.ContentLength, want.Close, want.Header)
		}
	})
}
