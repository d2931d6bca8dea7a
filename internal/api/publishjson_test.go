package api

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// publishSeeds are bodies for the publish decoders: the plain shapes the
// fast path takes, and near misses it must leave to encoding/json.
var publishSeeds = []string{
	publishBody,
	`{"type":"batch.succeeded","data":{"id":"batches/1"},"webhook_config":{"uris":["https://a.example/h"],"user_metadata":{"k":"v"}}}`,
	`{"events":[{"type":"t"}]}`, `{"events":[]}`, `{"events":null}`, `{"events":[null]}`, `{"events":[{"type":"t"},{"Type":"t"}]}`,
	`{"events":[{"type":"t","data":{"a":1}},{"type":"u","data":{"a":1}}]}`, `{"events":{}}`, `{"events":[{}],"events":[]}`,
	` {"type":"t"} `, "\t{\"type\" : \"t\" ,\r\n\"data\" :  {\"a\" : [ 1 , 2 ] } }\n", `{}`, ``, `  `, `null`, `[]`, `{"a":`, `{"type":"t"}x`, `{"type":"t"}{}`,
	`{"type":"t","type":"t"}`, `{"type":"t","Type":"u"}`, `{"TYPE":"t"}`, `{"typ\u0065":"t"}`, `{"type":"t\u00e9\ud83d\ude00\n"}`, `{"type":"\ud800"}`,
	`{"type":null,"subject":null,"timestamp":null,"idempotency_key":null,"data":null,"webhook_config":null}`,
	`{"type":1}`, `{"type":true}`, `{"type":"t","data":"x"}`, `{"type":"t","data":[1,2]}`, `{"type":"t","data":1.5e3}`, `{"type":"t","data":-0}`,
	`{"type":"t","data":{"a":[{"b":1,"b":2}]}}`, `{"type":"t","data":{"s":"\\\"","s2":"\"k\":1,\"k\":2"}}`, `{"type":"t","data":{"a\u0062":1,"ab":2}}`,
	`{"type":"t","data":{"a":01}}`, `{"type":"t","data":{"a":1.}}`, `{"type":"t","data":{"a":.5}}`, `{"type":"t","data":{"a":1e}}`, `{"type":"t","data":{"a":-}}`,
	`{"type":"t","data":{"a":tru}}`, `{"type":"t","data":{"a":nul}}`, `{"type":"t","data":{"a":"\x"}}`, `{"type":"t","data":{"a":"\u12"}}`, "{\"type\":\"t\",\"data\":{\"a\":\"\x01\"}}",
	`{"type":"t","data":{"a":1,}}`, `{"type":"t","data":{,"a":1}}`, `{"type":"t","data":[1,]}`, `{"type":"t","data":{"a" 1}}`, `{"type":"t",}`,
	"{\"type\":\"t\",\"data\":{\"a\":\"\xff\"}}", "{\"type\":\"\xc3\"}",
	`{"type":"t","webhook_config":{"URIs":["https://a.example/h"]}}`, `{"type":"t","webhook_config":{"uris":[],"uris":["h"]}}`,
	`{"type":"t","webhook_config":{"uris":[]}}`, `{"type":"t","webhook_config":{"uris":null}}`, `{"type":"t","webhook_config":{"uris":[null]}}`, `{"type":"t","webhook_config":{}}`,
	`{"type":"t","webhook_config":{"uris":["a","b\/c"],"audience":"a","trace_propagation":true,"rate_limit":{"per_second":2.5,"burst":3},"user_metadata":null}}`,
	`{"type":"t","webhook_config":{"rate_limit":{"per_second":1e400}}}`, `{"type":"t","webhook_config":{"rate_limit":{"burst":1.5}}}`,
	`{"type":"t","webhook_config":{"rate_limit":{"burst":99999999999999999999}}}`, `{"type":"t","webhook_config":{"rate_limit":null,"trace_propagation":null}}`,
	`{"type":"t","webhook_config":{"rate_limit":{"per_second":null,"burst":null}}}`, `{"type":"t","webhook_config":{"rate_limit":{}}}`,
	`{"type":"t","webhook_config":{"rate_limit":{"per_second":1,"per_second":2}}}`, `{"type":"t","webhook_config":{"user_metadata":{"K":1,"k":2}}}`,
	`{"type":"t","webhook_config":{"user_metadata":{"k":1,"k":2}}}`, `{"type":"t","webhook_config":"x"}`, `{"type":"t","webhook_config":{"trace_propagation":"yes"}}`,
	`{"type":"t","timestamp":"2026-05-05T12:00:00Z","subject":"batches/1","idempotency_key":"k"}`,
	`{"type":"t","data":` + strings.Repeat(`[`, 600) + strings.Repeat(`]`, 600) + `}`,
	`{"type":"t","data":{` + manyMembers(40, "") + `}}`, `{"type":"t","data":{` + manyMembers(40, `"k7"`) + `}}`,
}

// manyMembers returns n members "k0".."k{n-1}", then dup as one more name.
func manyMembers(n int, dup string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `"k%d":%d,`, i, i)
	}
	if dup == "" {
		dup = `"last"`
	}
	b.WriteString(dup + `:0`)
	return b.String()
}

// FuzzPublishDecoder holds the publish decoders to the generic strict
// decoder on arbitrary input: the fast path takes only what decodeBytes
// accepts, into the same request, and decodePublish answers exactly what
// DecodeJSON answers — the same value, or the same error.
func FuzzPublishDecoder(f *testing.F) {
	for _, s := range publishSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkPublishDecoder(t, body)
	})
}

func checkPublishDecoder(t *testing.T, body []byte) {
	t.Helper()
	var fast, want, got publishRequest
	werr := genericDecodeWith(body, &want, decodePublishGeneric)
	if fastPublish(body, &fast) {
		if werr != nil {
			t.Fatalf("%q: fast path accepted, decodeBytes refused: %v", body, werr)
		}
		if !reflect.DeepEqual(fast, want) {
			t.Fatalf("%q: fast path %+v, decodeBytes %+v", body, fast, want)
		}
	}
	if err := decodePublish(body, &got); fmt.Sprint(err) != fmt.Sprint(werr) || !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: decodePublish %+v, %v; DecodeJSON %+v, %v", body, got, err, want, werr)
	}

	var bfast, bwant, bgot batchPublishRequest
	werr = genericDecodeWith(body, &bwant, decodeBatchPublishGeneric)
	if fastBatchPublish(body, &bfast) {
		if werr != nil {
			t.Fatalf("%q: fast batch accepted, decodeBytes refused: %v", body, werr)
		}
		if !reflect.DeepEqual(bfast, bwant) {
			t.Fatalf("%q: fast batch %+v, decodeBytes %+v", body, bfast, bwant)
		}
	}
	if err := decodeBatchPublish(body, &bgot); fmt.Sprint(err) != fmt.Sprint(werr) || !reflect.DeepEqual(bgot, bwant) {
		t.Fatalf("%q: decodeBatchPublish %+v, %v; DecodeJSON %+v, %v", body, bgot, err, bwant, werr)
	}
}

// genericDecodeWith is a publish's generic path (decode) on a body
// already read.
func genericDecodeWith[T any](body []byte, v *T, decode func([]byte, *T) error) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	return decode(body, v)
}

// TestPublishDecoderFastPath: the shapes clients send take the fast path
// (the differential check alone would pass if every body fell back).
func TestPublishDecoderFastPath(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		publishBody,
		`{"type":"t","data":{"a":[1,-2.5e-3,true,false,null,"x\n\u00e9"],"b":{}},"timestamp":"2026-05-05T12:00:00Z","subject":"s","idempotency_key":"k"}`,
		`{"type":"t\u00e9","webhook_config":{"uris":["https://a.example/h"],"audience":"https://a.example","rate_limit":{"per_second":2.5,"burst":3},"trace_propagation":true,"user_metadata":{"k":"v"}}}`,
		`{"type":"t","data":{` + manyMembers(40, "") + `}}`,
	} {
		var req publishRequest
		if !fastPublish([]byte(body), &req) {
			t.Errorf("%s: not taken by the fast path", body)
		}
		var batch batchPublishRequest
		if b := `{"events":[` + body + `,` + body + `]}`; !fastBatchPublish([]byte(b), &batch) || len(batch.Events) != 2 {
			t.Errorf("%s: batch not taken by the fast path", b)
		}
	}
}

// TestPublishDecoderSeeds runs the differential check on the seeds and on
// every prefix of each: truncated bodies are the commonest malformed ones.
func TestPublishDecoderSeeds(t *testing.T) {
	t.Parallel()
	for _, s := range publishSeeds {
		for n := range len(s) + 1 {
			checkPublishDecoder(t, []byte(s[:n]))
		}
	}
}

// TestPublishResponseJSON: the publish responses write what json.Marshal
// writes, escapes and empty fields included.
func TestPublishResponseJSON(t *testing.T) {
	t.Parallel()
	evs := []*eventJSON{
		{ID: "evt_01J", Type: "batch.succeeded", Timestamp: "2026-05-05T12:00:00.123Z", CreateTime: "2026-05-05T12:00:01Z", DeliveryCount: 3},
		{ID: "e", Type: "t", CreateTime: "c", DeliveryCount: -1},
		{ID: `a"b\c`, Type: "<x>&\u2028\x01\x7f", Timestamp: "é\xff", CreateTime: "\t"},
		{},
	}
	var nilEvent *publishedEvent
	var batch []*batchEventJSON
	for i, e := range evs {
		batch = append(batch, &batchEventJSON{eventJSON: *e, Replayed: i%2 == 1})
	}
	values := []jsonAppender{nilEvent, (*replayedEvent)(nil), (*batchPublishResponse)(nil), &batchPublishResponse{},
		&batchPublishResponse{Events: []*batchEventJSON{}}, &batchPublishResponse{Events: append(batch, nil)}}
	for _, e := range evs {
		values = append(values, (*publishedEvent)(e), (*replayedEvent)(e))
	}
	for _, v := range values {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.appendJSON(nil); !bytes.Equal(got, want) {
			t.Errorf("%+v: %s, json.Marshal %s", v, got, want)
		}
	}
}

// TestSpecialIn: the eight-byte test never misses a quote, a backslash or
// a control character, whatever its neighbours.
func TestSpecialIn(t *testing.T) {
	t.Parallel()
	special := func(c byte) bool { return c < 0x20 || c == '"' || c == '\\' }
	var b [8]byte
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 200000 {
		for i := range b {
			b[i] = byte(rng.IntN(256))
			if n%2 == 0 { // mostly plain bytes, the case that matters
				b[i] = byte(0x20 + rng.IntN(0xe0))
			}
		}
		if n%3 == 0 {
			b[rng.IntN(8)] = byte(rng.IntN(256))
		}
		want := false
		for _, c := range b {
			want = want || special(c)
		}
		if got := specialIn(binary.LittleEndian.Uint64(b[:])); want && !got {
			t.Fatalf("%q: missed", b)
		}
	}
	for c := range 256 { // each byte value in each position, among plain bytes
		for pos := range 8 {
			b = [8]byte{'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a'}
			b[pos] = byte(c)
			if got := specialIn(binary.LittleEndian.Uint64(b[:])); got != special(byte(c)) {
				t.Fatalf("%q: %v", b, got)
			}
		}
	}
}
