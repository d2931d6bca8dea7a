package inbox

import (
	"net/http"
	"strings"
)

// EncodeHeader serialises h as "Name: value\r\n" lines, one per value.
func EncodeHeader(h http.Header) string {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	var b strings.Builder
	b.Grow(n)
	for k, vs := range h {
		for _, v := range vs {
			b.WriteString(k)
			b.WriteString(": ")
			b.WriteString(v)
			b.WriteString("\r\n")
		}
	}
	return b.String()
}

// DecodeHeader parses what EncodeHeader wrote.
func DecodeHeader(s string) http.Header {
	h := http.Header{}
	for s != "" {
		line, rest, _ := strings.Cut(s, "\r\n")
		s = rest
		if k, v, ok := strings.Cut(line, ": "); ok {
			h[k] = append(h[k], v)
		}
	}
	return h
}
