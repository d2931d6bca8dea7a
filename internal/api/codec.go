package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/longhook/longhook/internal/core"
)

// WriteJSON answers status with v as JSON. A nil v is written as {}: the
// official SDK fails on empty bodies, so the API never sends one.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	var body []byte
	switch v := v.(type) {
	case nil:
		body = []byte("{}\n")
	case jsonAppender: // the publish responses
		// A pooled buffer: Write does not retain it (io.Writer's contract).
		bp := responsePool.Get().(*[]byte)
		body = append(v.appendJSON((*bp)[:0]), '\n')
		defer func() {
			if cap(body) <= maxPooledResponse {
				*bp = body
				responsePool.Put(bp)
			}
		}()
	default:
		var err error
		body, err = json.Marshal(v)
		if err != nil {
			// Only a programming error gets here (an unsupported type).
			status = http.StatusInternalServerError
			body = []byte(`{"error":{"code":500,"message":"Internal error encountered.","status":"INTERNAL"}}`)
		}
		body = append(body, '\n')
	}
	// Set by hand with shared, canonical values: Header.Set allocates a
	// slice per call. Nothing appends to or edits these values in place.
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["X-Content-Type-Options"] = nosniff
	h["Cache-Control"] = noStore
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// responsePool holds the buffers of jsonAppender responses; one larger
// than maxPooledResponse (a big batch's) is left to the collector.
var responsePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

const maxPooledResponse = 64 << 10

var (
	jsonContentType = []string{"application/json; charset=utf-8"}
	nosniff         = []string{"nosniff"}
	noStore         = []string{"no-store"}
)

// jsonAppender is a response that writes its own JSON, exactly as
// json.Marshal writes it, without reflection: the publish responses, the
// API's most frequent.
type jsonAppender interface {
	appendJSON(b []byte) []byte
}

// appendJSONString appends s as json.Marshal writes it: as is when no
// byte needs escaping (the common case: ids, event types, timestamps),
// else through json.Marshal.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			enc, _ := json.Marshal(s)
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// DecodeJSON reads a JSON object from the request body into v, rejecting
// unknown fields. An empty body decodes as {} so that methods without
// required fields (ping, rotate) accept it. Failures are
// core.InvalidArgumentError values whose message names the problem: the
// unknown field, the mistyped field, the syntax error and its offset, or the
// size limit when the body was wrapped in http.MaxBytesReader.
func DecodeJSON(r *http.Request, v any) error {
	data, err := readBody(r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	return decodeBytes(data, v)
}

// readBody reads the request body into a buffer of its own, sized from
// Content-Length so that it is read without growing (io.ReadAll starts at
// 512 bytes and grows twice for a typical 600-byte publish). The size
// limit stays MaxBytesReader's: a body over it is refused, however much
// Content-Length announces.
func readBody(r *http.Request) ([]byte, error) {
	size := 512
	if n := r.ContentLength; n > 0 && n < maxPresized {
		size = int(n) + 1 // + 1: the read that meets EOF needs room
	}
	b := make([]byte, 0, size)
	for {
		n, err := r.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, core.Invalid("body", "Request payload size exceeds the limit: %d bytes.", mbe.Limit)
			}
			return nil, fmt.Errorf("read body: %w", err)
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// maxPresized is the largest Content-Length readBody allocates up front
// (a single publish, a batch of a hundred); a larger body grows as it
// arrives, so a client cannot make the server hold more than it sends.
const maxPresized = 64 << 10

// decodeBytes strictly decodes one JSON object from data into v: UTF-8
// only, no unknown member, exact (case-sensitive) member names, no name
// twice in an object (checkStrict).
func decodeBytes(data []byte, v any) error {
	// encoding/json would keep invalid UTF-8 inside raw values (event data
	// stored, delivered and put into JWT claims as it came) and quietly turn
	// it into U+FFFD in strings (a webhook name rewritten): refuse both.
	if !utf8.Valid(data) {
		return invalidUTF8(data)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] != '{' {
		return core.Invalid("body", "Invalid JSON payload: the request body must be a JSON object.")
	}
	if err := dec.Decode(v); err != nil {
		return translateJSONError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return core.Invalid("body", "Invalid JSON payload: unexpected data after the top-level object.")
	}
	return checkStrict(data, v)
}

// translateJSONError turns encoding/json errors into messages that name the
// field, in the style of Google's API errors.
func translateJSONError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return core.Invalid("body", "Invalid JSON payload: %s (at byte %d).", strings.TrimPrefix(se.Error(), "json: "), se.Offset)
	case errors.As(err, &te):
		if te.Field == "" {
			return core.Invalid("body", "Invalid JSON payload: expected %s, got %s.", jsonKind(te.Type.String()), te.Value)
		}
		return core.Invalid(te.Field, "Invalid value for field %q: expected %s, got %s.", te.Field, jsonKind(te.Type.String()), te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return core.Invalid("body", "Invalid JSON payload: unexpected end of input.")
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return core.Invalid(strings.Trim(name, `"`), "Unknown field %s.", name)
	}
	return core.Invalid("body", "Invalid JSON payload: %s.", strings.TrimPrefix(msg, "json: "))
}

// jsonKind describes a Go type in JSON terms for error messages.
func jsonKind(goType string) string {
	switch {
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "a boolean"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"), strings.HasPrefix(goType, "float"):
		return "a number"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "struct"), strings.Contains(goType, "."):
		return "an object"
	}
	return goType
}

// invalidUTF8 is the error for a body that is not UTF-8, naming the field
// that holds the first bad byte.
func invalidUTF8(data []byte) error {
	off := 0
	for off < len(data) {
		r, n := utf8.DecodeRune(data[off:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		off += n
	}
	field := jsonPathAt(data, int64(off))
	if field == "" {
		field = "body"
	}
	return core.Invalid(field, "Invalid JSON payload: %s holds bytes that are not valid UTF-8 (at byte %d).", field, off)
}

// jsonPathAt returns the path ("webhook_config.user_metadata.k", "data.items[2]")
// of the value whose token spans byte off of a JSON document, or "" when
// off is outside every value or the document is malformed before it.
func jsonPathAt(data []byte, off int64) string {
	type frame struct {
		obj     bool
		key     string
		idx     int
		wantKey bool
	}
	var stack []*frame
	path := func() string {
		var b strings.Builder
		for _, f := range stack {
			if f.obj {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			} else {
				fmt.Fprintf(&b, "[%d]", f.idx)
			}
		}
		return b.String()
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err != nil {
			return path()
		}
		end := dec.InputOffset()
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch {
		case tok == json.Delim('}') || tok == json.Delim(']'):
			stack = stack[:len(stack)-1] // a container ended: a value of its parent
		case top != nil && top.obj && top.wantKey:
			if off < end { // the bad byte is in a member name: name its object
				stack = stack[:len(stack)-1]
				return path()
			}
			top.key, _ = tok.(string)
			top.wantKey = false
			continue
		case off < end:
			return path()
		case tok == json.Delim('{'):
			stack = append(stack, &frame{obj: true, wantKey: true})
			continue
		case tok == json.Delim('['):
			stack = append(stack, &frame{})
			continue
		}
		// A value ended: the enclosing object wants a key, the array moves on.
		if len(stack) > 0 {
			if f := stack[len(stack)-1]; f.obj {
				f.wantKey = true
			} else {
				f.idx++
			}
		}
	}
}
