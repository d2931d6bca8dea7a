package postgres

import (
	"bytes"
	"context"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/longhook/longhook/internal/pgtest"
)

// arrayCases pairs each binaryArray with the plain slice pgx encodes
// itself, and the array type they are sent as.
func arrayCases() []struct {
	oid         uint32
	typ         string
	ours, plain any
} {
	s := func(v string) *string { return &v }
	zone := time.FixedZone("x", -5*3600)
	long := strings.Repeat("long \u00e9l\u00e9ment ", 8000) // 136 kB
	times := []time.Time{{}, time.Unix(0, 0), time.Date(2026, 12, 6, 15, 4, 5, 123456789, zone),
		time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(1850, 1, 1, 0, 0, 0, 1500, time.UTC)}
	return []struct {
		oid         uint32
		typ         string
		ours, plain any
	}{
		{pgtype.TextArrayOID, "text[]", textArray{"a", "", "msg_01", "caf\u00e9"}, []string{"a", "", "msg_01", "caf\u00e9"}},
		{pgtype.TextArrayOID, "text[]", textArray{}, []string{}},
		{pgtype.TextArrayOID, "text[]", textArray{long, "\u65e5\u672c \U0001f600 \\ \" , {}"}, []string{long, "\u65e5\u672c \U0001f600 \\ \" , {}"}},
		{pgtype.ByteaArrayOID, "bytea[]", byteaArray{[]byte(long), {0, 0xff, '\\'}}, [][]byte{[]byte(long), {0, 0xff, '\\'}}},
		{pgtype.ByteaArrayOID, "bytea[]", byteaArray{}, [][]byte{}},
		{pgtype.TextArrayOID, "text[]", textArray(nil), []string(nil)},
		{pgtype.TextArrayOID, "text[]", nullTextArray{s("{}"), nil, s("")}, []*string{s("{}"), nil, s("")}},
		{pgtype.TextArrayOID, "text[]", nullTextArray{nil}, []*string{nil}},
		{pgtype.ByteaArrayOID, "bytea[]", byteaArray{[]byte(`{"a":1}`), {}, nil}, [][]byte{[]byte(`{"a":1}`), {}, nil}},
		{pgtype.Int2ArrayOID, "int2[]", int16Array{0, 1, -1, 32767, -32768}, []int16{0, 1, -1, 32767, -32768}},
		{pgtype.Int4ArrayOID, "int4[]", int32Array{0, 200, -7, 1 << 30, math.MaxInt32, math.MinInt32}, []int32{0, 200, -7, 1 << 30, math.MaxInt32, math.MinInt32}},
		{pgtype.Int8ArrayOID, "int8[]", int64Array{0, 15e9, -1, 1 << 62, math.MaxInt64, math.MinInt64}, []int64{0, 15e9, -1, 1 << 62, math.MaxInt64, math.MinInt64}},
		{pgtype.Int8ArrayOID, "int8[]", int64Array{}, []int64{}},
		{pgtype.BoolArrayOID, "bool[]", boolArray(nil), []bool(nil)},
		{pgtype.BoolArrayOID, "bool[]", boolArray{true, false}, []bool{true, false}},
		{pgtype.TimestamptzArrayOID, "timestamptz[]", timeArray(times), times},
		{pgtype.TimestamptzArrayOID, "timestamptz[]", timeArray{}, []time.Time{}},
	}
}

// TestBinaryArraysMatchPgx checks that the arrays of arrays.go encode to
// the bytes pgx's own codecs write for the plain slices. Not parallel:
// it counts allocations.
func TestBinaryArraysMatchPgx(t *testing.T) {
	ours, theirs := pgtype.NewMap(), pgtype.NewMap()
	registerBinaryArrays(ours)
	for _, c := range arrayCases() {
		if _, ok := ours.PlanEncode(c.oid, pgtype.BinaryFormatCode, c.ours).(binaryArrayPlan); !ok {
			t.Errorf("%T: not encoded by binaryArrayPlan", c.ours)
		}
		got, err := ours.Encode(c.oid, pgtype.BinaryFormatCode, c.ours, []byte("prefix"))
		if err != nil {
			t.Fatalf("%T: %v", c.ours, err)
		}
		want, err := theirs.Encode(c.oid, pgtype.BinaryFormatCode, c.plain, []byte("prefix"))
		if err != nil {
			t.Fatalf("%T: %v", c.plain, err)
		}
		if !bytes.Equal(got, want) || (got == nil) != (want == nil) {
			t.Errorf("%T %v:\n got %x\nwant %x", c.ours, c.ours, got, want)
		}
	}
	// A binaryArray sent as another array type is left to pgx.
	if _, ok := ours.PlanEncode(pgtype.Int4ArrayOID, pgtype.BinaryFormatCode, textArray{"1"}).(binaryArrayPlan); ok {
		t.Error("textArray for an int4[] parameter encoded as text")
	}
	// Plain slices still go through pgx's codecs.
	if _, ok := ours.PlanEncode(pgtype.TextArrayOID, pgtype.BinaryFormatCode, []string{"a"}).(binaryArrayPlan); ok {
		t.Error("[]string encoded by binaryArrayPlan")
	}
	v, buf := any(textArray{"a", "b", "c"}), make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() {
		_, _ = ours.Encode(pgtype.TextArrayOID, pgtype.BinaryFormatCode, v, buf[:0])
	}); n != 0 {
		t.Errorf("textArray of 3: %v allocations, want none", n)
	}
}

// TestBinaryArraysRoundTrip sends every case to PostgreSQL as the array
// type of the publish statement and reads it back.
func TestBinaryArraysRoundTrip(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	c, err := connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, tc := range arrayCases() {
		got := reflect.New(reflect.TypeOf(tc.plain))
		if err := c.QueryRow(ctx, "SELECT $1::"+tc.typ, tc.ours).Scan(got.Interface()); err != nil {
			t.Fatalf("%T %v: %v", tc.ours, tc.ours, err)
		}
		want := reflect.New(reflect.TypeOf(tc.plain))
		if err := c.QueryRow(ctx, "SELECT $1::"+tc.typ, tc.plain).Scan(want.Interface()); err != nil {
			t.Fatalf("%T %v: %v", tc.plain, tc.plain, err)
		}
		if !reflect.DeepEqual(got.Elem().Interface(), want.Elem().Interface()) {
			t.Errorf("%T: read back %v, pgx's own %v", tc.ours, got.Elem(), want.Elem())
		}
	}
}
