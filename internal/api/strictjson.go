package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/longhook/longhook/internal/core"
)

// The strict checks encoding/json does not make (docs/security.md, "What
// the API accepts"): it matches member names to struct fields
// case-insensitively ("URI" fills uri) and lets the last of two equal
// names win. Both let two parsers read one body differently — a proxy or
// a receiver that checks "uri" while we act on "URI", or signed event data
// whose {"amount":1,"amount":1000} means one thing to a first-wins parser
// and another to a last-wins one — so a body is refused when a member name
// matches a field only case-insensitively, or when an object (at any
// depth, event data included) holds a name twice. checkStrict runs after
// encoding/json accepted the body: it is one pass over bytes that are
// known to be well-formed JSON, with no allocation on the common path.

// schema is what a JSON value decodes into, as far as the strict checks
// care: a struct's exact member names and their schemas, a map's or a
// slice's element schema. A nil schema is an opaque value (a scalar,
// json.RawMessage, any type with its own UnmarshalJSON), whose objects
// are still checked for duplicate names.
type schema struct {
	fields map[string]*schema // the struct's members by exact name (a nil *schema value: opaque)
	elem   *schema            // a slice's elements or a map's values
	isMap  bool
	text   bool // a Go string: must not hold NUL
}

// textSchema is the schema of every Go string. A NUL (\u0000) in one is
// refused: PostgreSQL's text cannot hold it (the insert failed, a 500),
// and SQLite would store what PostgreSQL refuses. Opaque values (event
// data, user_metadata) are delivered byte for byte and may hold one.
var textSchema = &schema{text: true}

var (
	schemaCache sync.Map // reflect.Type → *schema
	unmarshaler = reflect.TypeFor[json.Unmarshaler]()
)

// schemaOf returns the schema of values decoded into t, built once per type.
func schemaOf(t reflect.Type) *schema {
	if s, ok := schemaCache.Load(t); ok {
		return s.(*schema)
	}
	s := buildSchema(t, map[reflect.Type]*schema{})
	schemaCache.Store(t, s)
	return s
}

func buildSchema(t reflect.Type, building map[reflect.Type]*schema) *schema {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Implements(unmarshaler) || reflect.PointerTo(t).Implements(unmarshaler) {
		return nil
	}
	if s, ok := building[t]; ok { // a recursive type
		return s
	}
	switch t.Kind() {
	case reflect.Struct:
		s := &schema{fields: map[string]*schema{}}
		building[t] = s
		addFields(s, t, building)
		return s
	case reflect.Map:
		s := &schema{isMap: true}
		building[t] = s
		s.elem = buildSchema(t.Elem(), building)
		return s
	case reflect.String:
		return textSchema
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 { // []byte is a base64 string
			return nil
		}
		s := &schema{}
		building[t] = s
		s.elem = buildSchema(t.Elem(), building)
		return s
	}
	return nil
}

// addFields adds t's members as encoding/json names them: the tag's name
// or the Go name, "-" skipped, embedded structs' members promoted (a
// shallower name wins, as in encoding/json).
func addFields(s *schema, t reflect.Type, building map[reflect.Type]*schema) {
	var embedded []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				embedded = append(embedded, ft)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		s.fields[name] = buildSchema(f.Type, building)
	}
	for _, et := range embedded {
		inner := &schema{fields: map[string]*schema{}}
		addFields(inner, et, building)
		for name, fs := range inner.fields {
			if _, taken := s.fields[name]; !taken {
				s.fields[name] = fs
			}
		}
	}
}

// strictError is a refusal with the path of the offending member, built
// from the inside out as the scan unwinds.
type strictError struct {
	path      []string // innermost first: "uri", "webhook_config", "[2]", "events"
	dup       bool
	nul       bool // a NUL in a text value
	suggest   string
	surrogate string // an unpaired surrogate escape, as written ("\\ud800")
}

func (e *strictError) field() string {
	var b strings.Builder
	for i := len(e.path) - 1; i >= 0; i-- {
		p := e.path[i]
		if b.Len() > 0 && !strings.HasPrefix(p, "[") {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

func (e *strictError) invalid() error {
	f := e.field()
	switch {
	case e.surrogate != "":
		if f == "" {
			f = "body"
		}
		return core.Invalid(f, "Invalid JSON payload: %s holds %s, an unpaired UTF-16 surrogate escape, which encodes no Unicode character.", f, e.surrogate)
	case e.dup:
		return core.Invalid(f, "Invalid JSON payload: duplicate field %q.", f)
	case e.nul:
		return core.Invalid(f, "%s must not contain a NUL character (\\u0000)", f)
	case e.suggest != "":
		return core.Invalid(f, "Unknown field %q (field names are case-sensitive; did you mean %q?).", f, e.suggest)
	}
	return core.Invalid(f, "Unknown field %q.", f)
}

// checkStrict checks well-formed JSON data against the schema of v's type.
func checkStrict(data []byte, v any) error {
	sc := scanPool.Get().(*strictScan)
	defer func() {
		clear(sc.keys[:cap(sc.keys)]) // hold no reference to the body
		sc.keys, sc.data, sc.i = sc.keys[:0], nil, 0
		scanPool.Put(sc)
	}()
	sc.data = data
	if err := sc.value(schemaOf(reflect.TypeOf(v))); err != nil {
		return err.invalid()
	}
	return nil
}

// scanPool keeps scanners and their key stacks: the check allocates
// nothing on the publish path.
var scanPool = sync.Pool{New: func() any { return &strictScan{keys: make([][]byte, 0, manyKeys)} }}

// strictScan walks one well-formed JSON value. keys holds the member
// names of the open objects, for the duplicate check.
type strictScan struct {
	data []byte
	i    int
	keys [][]byte
}

// manyKeys is where an object's duplicate check moves from comparing
// with each earlier name to a set.
const manyKeys = 32

func (s *strictScan) ws() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

func (s *strictScan) value(sch *schema) *strictError {
	s.ws()
	if s.i >= len(s.data) {
		return nil
	}
	switch s.data[s.i] {
	case '{':
		return s.object(sch)
	case '[':
		return s.array(sch)
	case '"':
		from := s.i
		if s.skipString() {
			if bad := badSurrogate(s.data[from:s.i]); bad != "" {
				return &strictError{surrogate: bad}
			}
			if sch != nil && sch.text && hasNUL(s.data[from:s.i]) {
				return &strictError{nul: true}
			}
		}
	default:
		for s.i < len(s.data) {
			switch s.data[s.i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return nil
			}
			s.i++
		}
	}
	return nil
}

func (s *strictScan) array(sch *schema) *strictError {
	s.i++ // [
	var elem *schema
	if sch != nil {
		elem = sch.elem
	}
	for n := 0; ; n++ {
		s.ws()
		if s.i >= len(s.data) {
			return nil
		}
		if s.data[s.i] == ']' {
			s.i++
			return nil
		}
		if err := s.value(elem); err != nil {
			err.path = append(err.path, "["+strconv.Itoa(n)+"]")
			return err
		}
		s.ws()
		if s.i < len(s.data) && s.data[s.i] == ',' {
			s.i++
		}
	}
}

func (s *strictScan) object(sch *schema) *strictError {
	s.i++ // past {
	// This object's names are keys[start:]; an error ends the whole scan.
	start := len(s.keys)
	var seen map[string]struct{}
	for {
		s.ws()
		if s.i >= len(s.data) || s.data[s.i] != '"' {
			if s.i < len(s.data) { // }
				s.i++
			}
			s.keys = s.keys[:start]
			return nil
		}
		from := s.i
		key := s.key()
		if bad := badSurrogate(s.data[from:s.i]); bad != "" {
			return &strictError{path: []string{string(key)}, surrogate: bad}
		}
		if seen != nil {
			if _, dup := seen[string(key)]; dup {
				return &strictError{path: []string{string(key)}, dup: true}
			}
			seen[string(key)] = struct{}{}
		} else {
			for _, k := range s.keys[start:] {
				if bytes.Equal(k, key) {
					return &strictError{path: []string{string(key)}, dup: true}
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
		var child *schema
		switch {
		case sch == nil:
		case sch.isMap:
			child = sch.elem
		case sch.fields != nil:
			var ok bool
			if child, ok = sch.fields[string(key)]; !ok {
				err := &strictError{path: []string{string(key)}}
				for name := range sch.fields {
					if strings.EqualFold(name, string(key)) {
						err.suggest = name
					}
				}
				return err
			}
		}
		s.ws()
		if s.i < len(s.data) && s.data[s.i] == ':' {
			s.i++
		}
		if err := s.value(child); err != nil {
			err.path = append(err.path, string(key))
			return err
		}
		s.ws()
		if s.i < len(s.data) && s.data[s.i] == ',' {
			s.i++
		}
	}
}

// hasNUL reports whether the JSON string raw (quotes included, known to be
// well-formed and to hold an escape) decodes to a value holding NUL.
func hasNUL(raw []byte) bool {
	if !bytes.Contains(raw, []byte(`u0000`)) {
		return false
	}
	var v string
	return json.Unmarshal(raw, &v) == nil && strings.IndexByte(v, 0) >= 0
}

// key reads a member name: the bytes between the quotes when it has no
// escapes (no copy), its unescaped value otherwise.
func (s *strictScan) key() []byte {
	from := s.i
	escaped := s.skipString()
	raw := s.data[from:s.i]
	if len(raw) < 2 {
		return nil
	}
	if !escaped {
		return raw[1 : len(raw)-1]
	}
	var k string
	if json.Unmarshal(raw, &k) != nil {
		return raw
	}
	return []byte(k)
}

// shortString is how far skipString looks byte by byte before it calls
// bytes.IndexByte: most names and values are short, and the call costs
// more than the loop on them.
const shortString = 32

// skipString moves past the string starting at s.i and reports whether
// it holds an escape.
func (s *strictScan) skipString() (escaped bool) {
	s.i++ // opening quote
	for n := 0; s.i < len(s.data) && n < shortString; n++ {
		switch s.data[s.i] {
		case '"':
			s.i++
			return escaped
		case '\\':
			escaped = true
			s.i++
		}
		s.i++
	}
	// A long string: jump to each quote, and go on past one escaped by
	// an odd run of backslashes.
	for s.i < len(s.data) {
		j := bytes.IndexByte(s.data[s.i:], '"')
		if j < 0 {
			s.i = len(s.data)
			return escaped
		}
		end := s.i + j
		bs := 0
		for k := end - 1; k >= s.i && s.data[k] == '\\'; k-- {
			bs++
		}
		if bytes.IndexByte(s.data[s.i:end], '\\') >= 0 {
			escaped = true
		}
		s.i = end + 1
		if bs%2 == 0 {
			return escaped
		}
	}
	return escaped
}

// uEscape returns the length of the \u escape at the start of d: 6, or 12
// for a surrogate pair written as two escapes; 0 when it is malformed or
// half of a pair without its other half. encoding/json reads such a half
// as U+FFFD and other parsers keep it or fail, so two parsers would read
// one body differently; I-JSON (RFC 7493, section 2.1) forbids it, and
// protobuf's JSON parser (Google APIs') refuses it.
func uEscape(d []byte) int {
	r, ok := hex4(d)
	switch {
	case !ok:
		return 0
	case r < 0xD800 || r > 0xDFFF:
		return 6
	case r >= 0xDC00: // a low half first
		return 0
	}
	if lo, ok := hex4(d[6:]); ok && 0xDC00 <= lo && lo <= 0xDFFF {
		return 12
	}
	return 0
}

// hex4 reads the escape \uXXXX at the start of d.
func hex4(d []byte) (rune, bool) {
	if len(d) < 6 || d[0] != '\\' || d[1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range d[2:6] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// badSurrogate returns the first unpaired surrogate escape in str, a
// well-formed JSON string with its quotes, as written; "" when there is
// none.
func badSurrogate(str []byte) string {
	for i := 0; i < len(str); i++ {
		if str[i] != '\\' {
			continue
		}
		if i+1 < len(str) && str[i+1] == 'u' {
			n := uEscape(str[i:])
			if n == 0 {
				return string(str[i:min(i+6, len(str))])
			}
			i += n - 1
			continue
		}
		i++ // past the escaped character
	}
	return ""
}
