package api

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/longhook/longhook/internal/core"
)

// The publish requests' decoder. Every publish goes through it, so it reads
// the body once: the known members straight into the request, data and
// user_metadata kept as JSON bytes (checked to be JSON with no name twice
// in an object, never decoded), where the generic path
// (decodeBytes) runs encoding/json's scanner over the body twice and
// checkStrict a third time. It accepts only what decodeBytes accepts, into
// the same values; anything else — any refusal, and the rare shapes it
// leaves alone (escapes in member names, null array elements, nesting
// deeper than maxPublishDepth) — goes to decodeBytes, which decides and
// words the error exactly as before, and data nested too deep is refused
// there (decodePublishGeneric). FuzzPublishDecoder holds the two
// together on arbitrary input.

// decodePublish strictly decodes one publish request (decodeBytes's
// rules). On success, req.Data aliases data, which the caller must not
// reuse.
func decodePublish(data []byte, req *publishRequest) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil // as DecodeJSON: an empty body is {}
	}
	if fastPublish(data, req) {
		return nil
	}
	*req = publishRequest{}
	return decodePublishGeneric(data, req)
}

// decodePublishGeneric is decodePublish's generic path: decodeBytes, then
// data's depth (the fast path takes none too deep).
func decodePublishGeneric(data []byte, req *publishRequest) error {
	if err := decodeBytes(data, req); err != nil {
		return err
	}
	return core.CheckDepth("data", req.Data, core.MaxDataDepth)
}

// decodeBatchPublish is decodePublish for events:batchPublish.
func decodeBatchPublish(data []byte, req *batchPublishRequest) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if fastBatchPublish(data, req) {
		return nil
	}
	*req = batchPublishRequest{}
	return decodeBatchPublishGeneric(data, req)
}

// decodeBatchPublishGeneric is decodePublishGeneric for events:batchPublish.
func decodeBatchPublishGeneric(data []byte, req *batchPublishRequest) error {
	if err := decodeBytes(data, req); err != nil {
		return err
	}
	for i := range req.Events {
		if err := core.CheckDepth("events["+strconv.Itoa(i)+"].data", req.Events[i].Data, core.MaxDataDepth); err != nil {
			return err
		}
	}
	return nil
}

// fastPublish decodes data into req when it is a plain valid request,
// and reports whether it did; req is then as decodeBytes leaves it.
func fastPublish(data []byte, req *publishRequest) bool {
	if !utf8.Valid(data) {
		return false
	}
	s := getPubScan(data)
	defer putPubScan(s)
	s.ws()
	if !s.publish(req) {
		return false
	}
	s.ws()
	return s.i == len(s.data)
}

// fastBatchPublish is fastPublish for batchPublishRequest.
func fastBatchPublish(data []byte, req *batchPublishRequest) bool {
	if !utf8.Valid(data) {
		return false
	}
	s := getPubScan(data)
	defer putPubScan(s)
	s.ws()
	if !s.batch(req) {
		return false
	}
	s.ws()
	return s.i == len(s.data)
}

// maxPublishDepth is the deepest nesting inside data or user_metadata the
// fast path takes: the smaller of their limits (core.MaxDataDepth,
// core.MaxUserMetadataDepth). A deeper value goes to the generic path,
// which refuses data nested beyond its limit (decodePublishGeneric) and
// leaves user_metadata to the webhook_config's validation; it costs the
// fast path no work of its own, as it counts the depth anyway.
const maxPublishDepth = min(core.MaxDataDepth, core.MaxUserMetadataDepth)

// pubScan reads one body. keys holds the member names of the open objects
// of data and user_metadata, for the duplicate check (as strictScan).
type pubScan struct {
	data  []byte
	i     int
	depth int
	keys  [][]byte
}

var pubScanPool = sync.Pool{New: func() any { return &pubScan{keys: make([][]byte, 0, manyKeys)} }}

func getPubScan(data []byte) *pubScan {
	s := pubScanPool.Get().(*pubScan)
	s.data = data
	return s
}

func putPubScan(s *pubScan) {
	clear(s.keys[:cap(s.keys)]) // hold no reference to the body
	s.keys, s.data, s.i, s.depth = s.keys[:0], nil, 0, 0
	pubScanPool.Put(s)
}

func (s *pubScan) ws() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// at reports whether the next byte is c.
func (s *pubScan) at(c byte) bool { return s.i < len(s.data) && s.data[s.i] == c }

// member moves to the next member of an object whose '{' (first) or
// previous value was just read. It returns the member's name, positioned
// at its value, or end at the closing '}'; ok is false for anything else,
// a name with an escape included.
func (s *pubScan) member(first bool) (name []byte, end, ok bool) {
	s.ws()
	if s.at('}') {
		s.i++
		return nil, true, true
	}
	if !first {
		if !s.at(',') {
			return nil, false, false
		}
		s.i++
		s.ws()
	}
	if !s.at('"') {
		return nil, false, false
	}
	from, to, escaped, ok := s.str()
	if !ok || escaped {
		return nil, false, false
	}
	s.ws()
	if !s.at(':') {
		return nil, false, false
	}
	s.i++
	s.ws()
	return s.data[from:to], false, true
}

// element moves to the next element of an array whose '[' (first) or
// previous element was just read; end at the closing ']'.
func (s *pubScan) element(first bool) (end, ok bool) {
	s.ws()
	if s.at(']') {
		s.i++
		return true, true
	}
	if !first {
		if !s.at(',') {
			return false, false
		}
		s.i++
		s.ws()
	}
	return false, s.i < len(s.data)
}

// plain marks the bytes that stand for themselves inside a JSON string.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str reads the string at s.i: its contents are data[from:to], escaped
// says whether they hold an escape. Control characters, unknown escapes
// and unpaired surrogate escapes are refused (UTF-8 was checked
// beforehand).
func (s *pubScan) str() (from, to int, escaped, ok bool) {
	d := s.data
	i := s.i + 1
	from = i
	for {
		// Eight bytes at a time while none is special (long values such
		// as a payload's text), then byte by byte.
		for i+8 <= len(d) && !specialIn(binary.LittleEndian.Uint64(d[i:])) {
			i += 8
		}
		for i < len(d) && plain[d[i]] {
			i++
		}
		if i >= len(d) {
			return 0, 0, false, false
		}
		switch d[i] {
		case '"':
			s.i = i + 1
			return from, i, escaped, true
		case '\\':
			escaped = true
			if i+1 >= len(d) {
				return 0, 0, false, false
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				n := uEscape(d[i:])
				if n == 0 {
					return 0, 0, false, false
				}
				i += n
			default:
				return 0, 0, false, false
			}
		default: // a control character
			return 0, 0, false, false
		}
	}
}

// specialIn reports whether any of the eight bytes in x may be a quote, a
// backslash or a control character (below 0x20). It may report a byte
// that is none of them (the caller then looks byte by byte), never miss
// one.
func specialIn(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := x ^ (ones * '"')
	bs := x ^ (ones * '\\')
	return ((x-ones*0x20)&^x|(q-ones)&^q|(bs-ones)&^bs)&highs != 0
}

// literal reads lit (true, false, null) at s.i.
func (s *pubScan) literal(lit string) bool {
	if !bytes.HasPrefix(s.data[s.i:], []byte(lit)) {
		return false
	}
	s.i += len(lit)
	return true
}

// number reads a number at s.i (RFC 8259 grammar) and returns its text.
func (s *pubScan) number() ([]byte, bool) {
	d, i := s.data, s.i
	digits := func() bool {
		n := i
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
		return i > n
	}
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case !digits():
		return nil, false
	}
	if i < len(d) && d[i] == '.' {
		i++
		if !digits() {
			return nil, false
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if !digits() {
			return nil, false
		}
	}
	num := d[s.i:i]
	s.i = i
	return num, true
}

// value checks the JSON value at s.i: well-formed, no name twice in an
// object at any depth.
func (s *pubScan) value() bool {
	if s.i >= len(s.data) {
		return false
	}
	switch c := s.data[s.i]; c {
	case '{':
		return s.object()
	case '[':
		return s.array()
	case '"':
		_, _, _, ok := s.str()
		return ok
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		_, ok := s.number()
		return ok
	}
}

func (s *pubScan) object() bool {
	if s.depth++; s.depth > maxPublishDepth {
		return false
	}
	s.i++ // {
	start := len(s.keys)
	var seen map[string]struct{}
	for first := true; ; first = false {
		key, end, ok := s.member(first)
		if !ok {
			return false
		}
		if end {
			s.keys = s.keys[:start]
			s.depth--
			return true
		}
		if seen != nil {
			if _, dup := seen[string(key)]; dup {
				return false
			}
			seen[string(key)] = struct{}{}
		} else {
			for _, k := range s.keys[start:] {
				if bytes.Equal(k, key) {
					return false
				}
			}
			s.keys = append(s.keys, key)
			if len(s.keys)-start >= manyKeys {
				seen = make(map[string]struct{}, 2*manyKeys)
				for _, k := range s.keys[start:] {
					seen[string(k)] = struct{}{}
				}
			}
		}
		if !s.value() {
			return false
		}
	}
}

func (s *pubScan) array() bool {
	if s.depth++; s.depth > maxPublishDepth {
		return false
	}
	s.i++ // [
	for first := true; ; first = false {
		end, ok := s.element(first)
		if !ok {
			return false
		}
		if end {
			s.depth--
			return true
		}
		if !s.value() {
			return false
		}
	}
}

// raw reads a JSON value into dst as the body's own bytes, as a
// json.RawMessage member decodes (null included).
func (s *pubScan) raw(dst *json.RawMessage) bool {
	from := s.i
	if !s.value() {
		return false
	}
	*dst = s.data[from:s.i:s.i]
	return true
}

// readString reads a string member into dst; null leaves dst as it is.
func (s *pubScan) readString(dst *string) bool {
	if s.at('n') {
		return s.literal("null")
	}
	if !s.at('"') {
		return false
	}
	at := s.i
	from, to, escaped, ok := s.str()
	if !ok {
		return false
	}
	if !escaped {
		*dst = string(s.data[from:to])
		return true
	}
	// encoding/json's own unquoting (surrogates, U+FFFD), on a string
	// known to be well-formed; into a variable of its own, so that dst
	// does not escape on the common path.
	var v string
	if json.Unmarshal(s.data[at:s.i], &v) != nil || strings.IndexByte(v, 0) >= 0 {
		return false // a NUL: decodeBytes words the refusal
	}
	*dst = v
	return true
}

// Member bits, for the duplicate check of the fixed members.
const (
	mType = 1 << iota
	mData
	mWebhookConfig
	mIdempotencyKey
	mTimestamp
	mSubject
)

// publish reads a publishRequest object.
func (s *pubScan) publish(req *publishRequest) bool {
	return s.fields(func(name []byte) (uint, bool) {
		switch string(name) {
		case "type":
			return mType, s.readString(&req.Type)
		case "data":
			return mData, s.raw(&req.Data)
		case "webhook_config":
			return mWebhookConfig, s.webhookConfig(&req.WebhookConfig)
		case "idempotency_key":
			return mIdempotencyKey, s.readString(&req.IdempotencyKey)
		case "timestamp":
			return mTimestamp, s.readString(&req.Timestamp)
		case "subject":
			return mSubject, s.readString(&req.Subject)
		}
		return 0, false
	})
}

// fields reads the members of the object at s.i: field is called with
// each member's name, the value next, and returns the member's bit (0 for
// a name the type does not have) and whether its value read. An unknown
// name, a name twice or a value that does not read refuses the body.
func (s *pubScan) fields(field func(name []byte) (bit uint, ok bool)) bool {
	if !s.at('{') {
		return false
	}
	s.i++
	var seen uint
	for first := true; ; first = false {
		name, end, ok := s.member(first)
		if !ok {
			return false
		}
		if end {
			return true
		}
		bit, ok := field(name)
		if !ok || bit == 0 || seen&bit != 0 {
			return false
		}
		seen |= bit
	}
}

// batch reads a batchPublishRequest object.
func (s *pubScan) batch(req *batchPublishRequest) bool {
	if !s.at('{') {
		return false
	}
	s.i++
	seen := false
	for first := true; ; first = false {
		name, end, ok := s.member(first)
		if !ok {
			return false
		}
		if end {
			return true
		}
		if string(name) != "events" || seen {
			return false
		}
		seen = true
		if s.at('n') {
			if !s.literal("null") {
				return false
			}
			continue
		}
		if !s.at('[') {
			return false
		}
		s.i++
		req.Events = []publishRequest{}
		for first := true; ; first = false {
			end, ok := s.element(first)
			if !ok {
				return false
			}
			if end {
				break
			}
			req.Events = append(req.Events, publishRequest{})
			if !s.publish(&req.Events[len(req.Events)-1]) {
				return false
			}
		}
	}
}

// webhookConfig reads a webhook_config member: null or an object.
func (s *pubScan) webhookConfig(dst **core.WebhookConfig) bool {
	if s.at('n') {
		return s.literal("null")
	}
	wc := &core.WebhookConfig{}
	*dst = wc
	return s.fields(func(name []byte) (uint, bool) {
		switch string(name) {
		case "uris":
			return 1, s.readStrings(&wc.URIs)
		case "user_metadata":
			// A copy: the event keeps its webhook_config (core.Event.Dynamic)
			// while its deliveries run, and should not keep the body with it.
			ok := s.raw(&wc.UserMetadata)
			wc.UserMetadata = bytes.Clone(wc.UserMetadata)
			return 2, ok
		case "audience":
			return 4, s.readString(&wc.Audience)
		case "rate_limit":
			return 8, s.rateLimit(&wc.RateLimit)
		case "trace_propagation":
			return 16, s.readBool(&wc.TracePropagation)
		}
		return 0, false
	})
}

// readStrings reads an array of strings (null leaves dst nil).
func (s *pubScan) readStrings(dst *[]string) bool {
	if s.at('n') {
		return s.literal("null")
	}
	if !s.at('[') {
		return false
	}
	s.i++
	out := []string{}
	for first := true; ; first = false {
		end, ok := s.element(first)
		if !ok {
			return false
		}
		if end {
			*dst = out
			return true
		}
		var v string
		if !s.at('"') || !s.readString(&v) { // a null element: left to encoding/json
			return false
		}
		out = append(out, v)
	}
}

func (s *pubScan) readBool(dst *bool) bool {
	switch {
	case s.at('t'):
		*dst = true
		return s.literal("true")
	case s.at('f'):
		*dst = false
		return s.literal("false")
	case s.at('n'):
		return s.literal("null")
	}
	return false
}

// rateLimit reads a rate_limit member: null or an object.
func (s *pubScan) rateLimit(dst **core.RateLimit) bool {
	if s.at('n') {
		return s.literal("null")
	}
	rl := &core.RateLimit{}
	*dst = rl
	return s.fields(func(name []byte) (uint, bool) {
		switch string(name) {
		case "per_second":
			return 1, s.numberInto(func(n []byte) (err error) { rl.PerSecond, err = strconv.ParseFloat(string(n), 64); return err })
		case "burst":
			return 2, s.numberInto(func(n []byte) error {
				v, err := strconv.ParseInt(string(n), 10, 64)
				rl.Burst = int(v)
				return err
			})
		}
		return 0, false
	})
}

// numberInto reads a number member with set, as encoding/json parses it
// (null leaves it as it is; a parse error refuses the body).
func (s *pubScan) numberInto(set func([]byte) error) bool {
	if s.at('n') {
		return s.literal("null")
	}
	n, ok := s.number()
	return ok && set(n) == nil
}
