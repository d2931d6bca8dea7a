package postgres

import (
	"encoding/binary"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// The column arrays of the hot statements (the publish, the completion)
// are passed as the types below, which write PostgreSQL's binary array
// format in one pass. pgx's generic ArrayCodec boxes every element into an interface
// (an allocation for each string and time), checks it by reflection and
// looks up its encode plan: ~6 % of the server's CPU on PostgreSQL single
// publishes, and most of its allocations. The bytes sent are the same
// (TestBinaryArraysMatchPgx).

type (
	textArray     []string
	nullTextArray []*string // nil elements are NULL
	byteaArray    [][]byte  // nil elements are NULL
	int16Array    []int16
	int32Array    []int32
	int64Array    []int64
	boolArray     []bool
	timeArray     []time.Time // timestamptz
)

// binaryArray is a one-dimensional array of one element type.
type binaryArray interface {
	elemOID() uint32
	isNil() bool
	length() int
	// appendElems appends the elements, each as its length and bytes,
	// and reports whether one was NULL.
	appendElems(buf []byte) ([]byte, bool)
}

func (a textArray) elemOID() uint32     { return pgtype.TextOID }
func (a nullTextArray) elemOID() uint32 { return pgtype.TextOID }
func (a byteaArray) elemOID() uint32    { return pgtype.ByteaOID }
func (a int16Array) elemOID() uint32    { return pgtype.Int2OID }
func (a int32Array) elemOID() uint32    { return pgtype.Int4OID }
func (a int64Array) elemOID() uint32    { return pgtype.Int8OID }
func (a boolArray) elemOID() uint32     { return pgtype.BoolOID }
func (a timeArray) elemOID() uint32     { return pgtype.TimestamptzOID }

func (a textArray) isNil() bool     { return a == nil }
func (a nullTextArray) isNil() bool { return a == nil }
func (a byteaArray) isNil() bool    { return a == nil }
func (a int16Array) isNil() bool    { return a == nil }
func (a int32Array) isNil() bool    { return a == nil }
func (a int64Array) isNil() bool    { return a == nil }
func (a boolArray) isNil() bool     { return a == nil }
func (a timeArray) isNil() bool     { return a == nil }

func (a textArray) length() int     { return len(a) }
func (a nullTextArray) length() int { return len(a) }
func (a byteaArray) length() int    { return len(a) }
func (a int16Array) length() int    { return len(a) }
func (a int32Array) length() int    { return len(a) }
func (a int64Array) length() int    { return len(a) }
func (a boolArray) length() int     { return len(a) }
func (a timeArray) length() int     { return len(a) }

var be = binary.BigEndian

func (a textArray) appendElems(buf []byte) ([]byte, bool) {
	n := 0
	for _, s := range a {
		n += 4 + len(s)
	}
	buf = grow(buf, n)
	for _, s := range a {
		buf = be.AppendUint32(buf, uint32(len(s)))
		buf = append(buf, s...)
	}
	return buf, false
}

func (a nullTextArray) appendElems(buf []byte) ([]byte, bool) {
	nulls := false
	for _, s := range a {
		if s == nil {
			buf, nulls = be.AppendUint32(buf, 0xffffffff), true
			continue
		}
		buf = be.AppendUint32(buf, uint32(len(*s)))
		buf = append(buf, *s...)
	}
	return buf, nulls
}

func (a byteaArray) appendElems(buf []byte) ([]byte, bool) {
	n := 0
	for _, b := range a {
		n += 4 + len(b)
	}
	buf = grow(buf, n)
	nulls := false
	for _, b := range a {
		if b == nil {
			buf, nulls = be.AppendUint32(buf, 0xffffffff), true
			continue
		}
		buf = be.AppendUint32(buf, uint32(len(b)))
		buf = append(buf, b...)
	}
	return buf, nulls
}

func (a int16Array) appendElems(buf []byte) ([]byte, bool) {
	buf = grow(buf, 6*len(a))
	for _, v := range a {
		buf = be.AppendUint16(be.AppendUint32(buf, 2), uint16(v))
	}
	return buf, false
}

func (a int32Array) appendElems(buf []byte) ([]byte, bool) {
	buf = grow(buf, 8*len(a))
	for _, v := range a {
		buf = be.AppendUint32(be.AppendUint32(buf, 4), uint32(v))
	}
	return buf, false
}

func (a int64Array) appendElems(buf []byte) ([]byte, bool) {
	buf = grow(buf, 12*len(a))
	for _, v := range a {
		buf = be.AppendUint64(be.AppendUint32(buf, 8), uint64(v))
	}
	return buf, false
}

func (a boolArray) appendElems(buf []byte) ([]byte, bool) {
	buf = grow(buf, 5*len(a))
	for _, v := range a {
		b := byte(0)
		if v {
			b = 1
		}
		buf = append(be.AppendUint32(buf, 1), b)
	}
	return buf, false
}

// microsFromUnixToY2K is PostgreSQL's epoch (2000-01-01) in Unix
// microseconds.
const microsFromUnixToY2K = 946684800 * 1000000

func (a timeArray) appendElems(buf []byte) ([]byte, bool) {
	buf = grow(buf, 12*len(a))
	for _, t := range a {
		// As pgx's TimestamptzCodec: microseconds since 2000-01-01 UTC,
		// the sub-microsecond part truncated.
		us := t.Unix()*1000000 + int64(t.Nanosecond())/1000 - microsFromUnixToY2K
		buf = be.AppendUint64(be.AppendUint32(buf, 8), uint64(us))
	}
	return buf, false
}

// grow makes room for n more bytes.
func grow(buf []byte, n int) []byte {
	if cap(buf)-len(buf) < n {
		buf = append(buf[:cap(buf)], make([]byte, n)...)[:len(buf)]
	}
	return buf
}

// binaryArrayPlan encodes a binaryArray as pgx's ArrayCodec would: NULL
// for a nil slice, else one dimension of len(a) from 1.
type binaryArrayPlan struct{}

func (binaryArrayPlan) Encode(value any, buf []byte) ([]byte, error) {
	a := value.(binaryArray)
	if a.isNil() {
		return nil, nil
	}
	nullAt := len(buf) + 4
	buf = be.AppendUint32(buf, 1) // dimensions
	buf = be.AppendUint32(buf, 0) // contains NULL: set below
	buf = be.AppendUint32(buf, a.elemOID())
	buf = be.AppendUint32(buf, uint32(a.length()))
	buf = be.AppendUint32(buf, 1) // lower bound
	buf, nulls := a.appendElems(buf)
	if nulls {
		be.PutUint32(buf[nullAt:], 1)
	}
	return buf, nil
}

// binaryArrayCodec is an array type's codec that encodes the
// binaryArray of its element type itself and leaves everything else
// (other values, scanning) to the codec it wraps.
type binaryArrayCodec struct {
	pgtype.Codec
	elem uint32
}

func (c binaryArrayCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if a, ok := value.(binaryArray); ok && format == pgtype.BinaryFormatCode && a.elemOID() == c.elem {
		return binaryArrayPlan{}
	}
	return c.Codec.PlanEncode(m, oid, format, value)
}

// registerBinaryArrays wraps the codecs of the array types binaryArray
// values are passed for.
func registerBinaryArrays(m *pgtype.Map) {
	for _, t := range []struct{ array, elem uint32 }{
		{pgtype.TextArrayOID, pgtype.TextOID},
		{pgtype.ByteaArrayOID, pgtype.ByteaOID},
		{pgtype.Int2ArrayOID, pgtype.Int2OID},
		{pgtype.Int4ArrayOID, pgtype.Int4OID},
		{pgtype.Int8ArrayOID, pgtype.Int8OID},
		{pgtype.BoolArrayOID, pgtype.BoolOID},
		{pgtype.TimestamptzArrayOID, pgtype.TimestamptzOID},
	} {
		dt, ok := m.TypeForOID(t.array)
		if !ok {
			continue
		}
		m.RegisterType(&pgtype.Type{Name: dt.Name, OID: dt.OID, Codec: binaryArrayCodec{Codec: dt.Codec, elem: t.elem}})
	}
}
