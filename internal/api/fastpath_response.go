package api

import (
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"
)

// fastResponse is a fast-path response: buffered, then written at once
// with its Content-Length.
type fastResponse struct {
	header http.Header
	status int
	body   []byte
}

func (w *fastResponse) reset() {
	clear(w.header)
	w.status = 0
	w.body = w.body[:0]
}

func (w *fastResponse) Header() http.Header { return w.header }

func (w *fastResponse) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
}

func (w *fastResponse) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

// date returns the Date header's value for now, formatted once a second.
func (c *fastConn) date(now time.Time) []byte {
	if sec := now.Unix(); sec != c.dateSec || c.dateVal == nil {
		c.dateSec = sec
		c.dateVal = now.UTC().AppendFormat(c.dateVal[:0], http.TimeFormat)
	}
	return c.dateVal
}

// appendResponse writes the status line, the headers (sorted, as net/http
// writes them; then Date, Content-Length and, when the connection closes,
// Connection: close) and the body.
func (w *fastResponse) appendResponse(b []byte, keep bool, date []byte) []byte {
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	if text := http.StatusText(status); text != "" {
		b = append(b, text...)
	} else {
		b = append(b, "status code "...)
		b = strconv.AppendInt(b, int64(status), 10)
	}
	b = append(b, "\r\n"...)
	var keysArr [16]string
	keys := keysArr[:0]
	for k := range w.header {
		switch k {
		case "Content-Length", "Transfer-Encoding", "Connection":
			continue // the fast path writes its own
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	bodyless := status == http.StatusNoContent || status == http.StatusNotModified
	for _, k := range keys {
		if !validHeaderName(k) {
			continue
		}
		for _, v := range w.header[k] {
			b = append(b, k...)
			b = append(b, ": "...)
			b = appendHeaderValue(b, v)
			b = append(b, "\r\n"...)
		}
	}
	if _, ok := w.header["Date"]; !ok {
		b = append(b, "Date: "...)
		b = append(b, date...)
		b = append(b, "\r\n"...)
	}
	if !bodyless {
		if _, ok := w.header["Content-Type"]; !ok && len(w.body) > 0 {
			b = append(b, "Content-Type: "...)
			b = append(b, http.DetectContentType(w.body)...)
			b = append(b, "\r\n"...)
		}
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(w.body)), 10)
		b = append(b, "\r\n"...)
	}
	if !keep {
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, "\r\n"...)
	if !bodyless {
		b = append(b, w.body...)
	}
	return b
}

// validHeaderName reports whether k may be written as a header name.
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := range len(k) {
		if !isTokenChar(k[i]) {
			return false
		}
	}
	return true
}

// appendHeaderValue writes v as net/http does: line breaks become spaces,
// surrounding blanks are trimmed.
func appendHeaderValue(b []byte, v string) []byte {
	for i := range len(v) {
		if v[i] == '\r' || v[i] == '\n' {
			v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
			break
		}
	}
	return append(b, textproto.TrimString(v)...)
}
