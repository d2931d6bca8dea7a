package api

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

// Verdicts of scanHead.
const (
	headMore  = iota // not enough bytes yet
	headHot          // a head the fast path takes
	headOther        // anything else: net/http's
)

// fastMaxBody is the largest Content-Length the fast path takes; a larger
// body (a big batch) is net/http's to stream.
const fastMaxBody = 1 << 20

// scanHead judges the request head at the start of buf: the request line
// "POST <publish path> HTTP/1.1", then header lines of printable ASCII
// with a token name, a Host and a Content-Length, and nothing net/http
// treats specially. It returns the head's length when it is whole.
func scanHead(buf []byte) (int, int) {
	const prefix = "POST /v"
	if len(buf) < len(prefix) {
		if string(buf) != prefix[:len(buf)] {
			return 0, headOther
		}
		return 0, headMore
	}
	if string(buf[:len(prefix)]) != prefix {
		return 0, headOther
	}
	eol, bare := lineEnd(buf, 0)
	if eol < 0 {
		if bare || len(buf) > len("POST /v1alpha/events:batchPublish HTTP/1.1\r\n") {
			return 0, headOther
		}
		return 0, headMore
	}
	line := buf[:eol]
	const proto = " HTTP/1.1"
	if !bytes.HasSuffix(line, []byte(proto)) || !hotTarget(line[len("POST "):len(line)-len(proto)]) {
		return 0, headOther
	}
	pos := eol + 2
	var host, length, conn int
	for {
		eol, bare := lineEnd(buf, pos)
		if eol < 0 {
			if bare {
				return 0, headOther
			}
			return 0, headMore
		}
		if eol == pos { // the empty line: the head is whole
			if host != 1 || length != 1 || conn > 1 {
				return 0, headOther
			}
			return eol + 2, headHot
		}
		name, value, ok := headerLine(buf[pos:eol])
		if !ok {
			return 0, headOther
		}
		switch specialHeader(name) {
		case hdrHost:
			if !validHost(value) {
				return 0, headOther
			}
			host++
		case hdrLength:
			if _, ok := parseLength(value); !ok {
				return 0, headOther
			}
			length++
		case hdrConnection:
			if !asciiEqualFold(value, "keep-alive") && !asciiEqualFold(value, "close") {
				return 0, headOther
			}
			conn++
		case hdrRefused:
			return 0, headOther
		}
		pos = eol + 2
	}
}

// hotTarget reports whether target is a path the fast path serves.
func hotTarget(t []byte) bool {
	switch string(t) {
	case "/v1/events", "/v1beta/events", "/v1alpha/events",
		"/v1/events:batchPublish", "/v1beta/events:batchPublish", "/v1alpha/events:batchPublish":
		return true
	}
	return false
}

// lineEnd finds the end of the line that starts at from: the index of
// its "\r\n", or -1 if no '\n' came yet, or -1 and bare if the first
// '\n' has no '\r' before it (a line end net/http accepts and the fast
// path leaves to it). A line ends at its first '\n': one inside a line
// whose "\r\n" comes later is a bare one, as net/http reads it too.
func lineEnd(b []byte, from int) (eol int, bare bool) {
	i := bytes.IndexByte(b[from:], '\n')
	if i < 0 {
		return -1, false
	}
	if i == 0 || b[from+i-1] != '\r' {
		return -1, true
	}
	return from + i - 1, false
}

// Header names scanHead looks at.
const (
	hdrOther      = iota
	hdrHost       // Host
	hdrLength     // Content-Length
	hdrConnection // Connection
	hdrRefused    // one net/http treats specially: the head is net/http's
)

// specialHeader says which of the names scanHead looks at name is, by its
// length first (most names are none of them).
func specialHeader(name []byte) int {
	switch len(name) {
	case 4:
		if asciiEqualFold(name, "host") {
			return hdrHost
		}
	case 14:
		if asciiEqualFold(name, "content-length") {
			return hdrLength
		}
	case 10:
		if asciiEqualFold(name, "connection") {
			return hdrConnection
		}
	case 17:
		if asciiEqualFold(name, "transfer-encoding") {
			return hdrRefused
		}
	case 6:
		// A browser's request (Origin) gets its CORS headers from the
		// generic path (cors.go).
		if asciiEqualFold(name, "expect") || asciiEqualFold(name, "pragma") || asciiEqualFold(name, "origin") {
			return hdrRefused
		}
	case 7:
		if asciiEqualFold(name, "upgrade") || asciiEqualFold(name, "trailer") {
			return hdrRefused
		}
	case 16:
		// A compressed body is decoded by the server's generic path
		// (contentcoding.go); the fast path reads bodies as they are.
		if asciiEqualFold(name, "content-encoding") {
			return hdrRefused
		}
	}
	return hdrOther
}

// headerLine splits "Name: value": a token name, then printable ASCII or
// tabs; the value without its surrounding blanks.
func headerLine(l []byte) (name, value []byte, ok bool) {
	colon := -1
	for i, ch := range l {
		if ch == ':' {
			colon = i
			break
		}
		if !isTokenChar(ch) {
			return nil, nil, false
		}
	}
	if colon <= 0 {
		return nil, nil, false
	}
	v := l[colon+1:]
	for _, ch := range v {
		if (ch < 0x20 && ch != '\t') || ch >= 0x7f {
			return nil, nil, false
		}
	}
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return l[:colon], v, true
}

// isTokenChar reports whether ch may appear in a header name (RFC 9110
// tchar).
func isTokenChar(ch byte) bool { return tokenChars[ch] }

// tokenChars is the table of isTokenChar.
var tokenChars = func() (t [256]bool) {
	for ch := range 256 {
		switch {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9',
			strings.IndexByte("!#$%&'*+-.^_`|~", byte(ch)) >= 0:
			t[ch] = true
		}
	}
	return t
}()

// asciiEqualFold compares b with the lower-case ASCII s, ignoring case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		ch := b[i]
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		if ch != s[i] {
			return false
		}
	}
	return true
}

// validHost accepts a plain host[:port] (names, IPv4, bracketed IPv6).
func validHost(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	for _, ch := range v {
		switch {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9':
		case ch == '.' || ch == '-' || ch == ':' || ch == '[' || ch == ']' || ch == '_':
		default:
			return false
		}
	}
	return true
}

// parseLength reads a Content-Length the fast path takes: digits only, at
// most fastMaxBody.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 8 {
		return 0, false
	}
	var n int64
	for _, ch := range v {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		n = n*10 + int64(ch-'0')
	}
	return n, n <= fastMaxBody
}

// parse builds the request from a head scanHead judged hot. head is a
// string of its own: every header name and value is a substring of it.
func (c *fastConn) parse(head string) (*http.Request, bool) {
	// Every '\n' of a head scanHead took ends a line with "\r\n": lines
	// are cut at '\n' (one byte: the fast searches).
	eol := strings.IndexByte(head, '\n') - 1
	target := head[len("POST ") : eol-len(" HTTP/1.1")]
	rest := head[eol+2 : len(head)-2]
	lines := strings.Count(rest, "\n")
	if c.hdr == nil {
		c.hdr = make(http.Header, lines)
	}
	h := c.hdr
	clear(h)
	if cap(c.vals) < lines {
		c.vals = make([]string, lines)
	}
	vals := c.vals[:lines]
	clear(vals)
	r := new(http.Request)
	*r = c.tmpl
	r.URL = &url.URL{Path: target}
	r.RequestURI = target
	r.Header = h
	for i := 0; len(rest) > 0; i++ {
		j := strings.IndexByte(rest, '\n')
		if j < 1 || rest[j-1] != '\r' {
			return nil, false
		}
		line := rest[:j-1]
		rest = rest[j+1:]
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, false
		}
		value = trimBlanks(value)
		key := canonicalKey(name)
		switch key {
		case "Host":
			r.Host = value // promoted, not kept in Header, as net/http does
			continue
		case "Content-Length":
			n, _ := parseLength([]byte(value))
			r.ContentLength = n
		case "Connection":
			r.Close = strings.EqualFold(value, "close")
		}
		vals[i] = value
		if prev, ok := h[key]; ok {
			h[key] = append(prev, value)
		} else {
			h[key] = vals[i : i+1 : i+1]
		}
	}
	return r, true
}

// trimBlanks is strings.Trim(v, " \t") without its cutset's set.
func trimBlanks(v string) string {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// canonicalKey is textproto.CanonicalMIMEHeaderKey without an allocation
// for the names clients send on every publish in their usual spellings.
func canonicalKey(name string) string {
	switch name {
	case "Host", "Content-Length", "Content-Type", "User-Agent", "Accept-Encoding", "Accept",
		"Connection", "X-Goog-Api-Key", "Idempotency-Key", "Traceparent", "Tracestate":
		return name
	case "host":
		return "Host"
	case "content-length":
		return "Content-Length"
	case "content-type":
		return "Content-Type"
	case "user-agent":
		return "User-Agent"
	case "x-goog-api-key":
		return "X-Goog-Api-Key"
	case "idempotency-key":
		return "Idempotency-Key"
	case "traceparent":
		return "Traceparent"
	}
	return textproto.CanonicalMIMEHeaderKey(name)
}

// fastBody is a fast-path request's body: the next remain bytes of the
// connection.
type fastBody struct {
	br     *bufio.Reader
	remain int64
	err    error // a read that failed before the end
}

func (b *fastBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.remain <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	n, err := b.br.Read(p)
	b.remain -= int64(n)
	switch {
	case err == io.EOF && b.remain > 0:
		err = io.ErrUnexpectedEOF
		b.err = err
	case err != nil:
		b.err = err
	case b.remain == 0:
		err = io.EOF // with the last bytes, as net/http's body
	}
	return n, err
}

func (b *fastBody) Close() error { return nil }
