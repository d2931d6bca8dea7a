package postgres

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// The encoding of a group's deliveries (deferred_deliveries.data): a
// version byte and the number of deliveries, then per delivery its ten
// string fields, three integers, a flag and four times. A string is the
// index (from 1) of the same field's earlier value when it repeats one
// (project, webhook, type, owner…), else 0, the length of the prefix it
// shares with the field's previous value (ids made in one millisecond
// share 10–14 bytes) and the rest. A time is its difference in seconds
// and nanoseconds from the delivery's creation time (the creation time
// from the previous delivery's): every time comes back exactly as the
// publish had it.
const deferVersion = 2

// deferStrFields is the number of string fields of a delivery.
const deferStrFields = 10

type deferEncoder struct {
	seen [deferStrFields]map[string]uint64
	prev [deferStrFields]string
	b    []byte
}

func (e *deferEncoder) str(f int, s string) {
	m := e.seen[f]
	if i, ok := m[s]; ok {
		e.b = binary.AppendUvarint(e.b, i)
		return
	}
	if m == nil {
		m = map[string]uint64{}
		e.seen[f] = m
	}
	m[s] = uint64(len(m) + 1)
	prev := e.prev[f]
	p := 0
	for p < len(s) && p < len(prev) && s[p] == prev[p] {
		p++
	}
	e.b = binary.AppendUvarint(e.b, 0)
	e.b = binary.AppendUvarint(e.b, uint64(p))
	e.b = binary.AppendUvarint(e.b, uint64(len(s)-p))
	e.b = append(e.b, s[p:]...)
	e.prev[f] = s
}

func (e *deferEncoder) time(t, ref time.Time) {
	e.b = binary.AppendVarint(e.b, t.Unix()-ref.Unix())
	e.b = binary.AppendVarint(e.b, int64(t.Nanosecond())-int64(ref.Nanosecond()))
}

// encodeDeferred encodes deliveries (filled by ForInsert).
func encodeDeferred(ds []core.Delivery) []byte {
	e := deferEncoder{b: make([]byte, 0, 16+len(ds)*48)}
	e.b = append(e.b, deferVersion)
	e.b = binary.AppendUvarint(e.b, uint64(len(ds)))
	var prev time.Time
	for i := range ds {
		d := &ds[i]
		for f, s := range [deferStrFields]string{d.ID, d.EventID, d.ProjectID, d.WebhookID, d.URI, d.Dest,
			d.EventType, string(d.Status), d.LastError, d.LeaseOwner} {
			e.str(f, s)
		}
		e.b = binary.AppendVarint(e.b, int64(d.Attempts))
		e.b = binary.AppendVarint(e.b, int64(d.LastStatusCode))
		e.b = binary.AppendVarint(e.b, int64(d.ScheduleBase))
		m := byte(0)
		if d.Manual {
			m = 1
		}
		e.b = append(e.b, m)
		e.time(d.CreateTime, prev)
		e.time(d.NextAttemptTime, d.CreateTime)
		e.time(d.ScheduleStart, d.CreateTime)
		e.time(d.UpdateTime, d.CreateTime)
		prev = d.CreateTime
	}
	return e.b
}

var errDeferData = errors.New("postgres: deferred_deliveries: corrupt data")

type deferDecoder struct {
	b    []byte
	err  error
	seen [deferStrFields][]string
	prev [deferStrFields]string
}

func (r *deferDecoder) fail() {
	r.err = errDeferData
	r.b = nil
}

func (r *deferDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *deferDecoder) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *deferDecoder) str(f int) string {
	i := r.uvarint()
	if i > 0 {
		if i > uint64(len(r.seen[f])) {
			r.fail()
			return ""
		}
		return r.seen[f][i-1]
	}
	p, l := r.uvarint(), r.uvarint()
	if r.err != nil || p > uint64(len(r.prev[f])) || l > uint64(len(r.b)) {
		r.fail()
		return ""
	}
	s := r.prev[f][:p] + string(r.b[:l])
	r.b = r.b[l:]
	r.seen[f] = append(r.seen[f], s)
	r.prev[f] = s
	return s
}

func (r *deferDecoder) time(ref time.Time) time.Time {
	sec, nsec := r.varint(), r.varint()
	return time.Unix(ref.Unix()+sec, int64(ref.Nanosecond())+nsec).UTC()
}

// decodeDeferred decodes encodeDeferred's output.
func decodeDeferred(b []byte) ([]core.Delivery, error) {
	if len(b) == 0 || b[0] != deferVersion {
		return nil, errDeferData
	}
	r := deferDecoder{b: b[1:]}
	nd := r.uvarint()
	if r.err != nil || nd > uint64(len(r.b)) {
		return nil, errDeferData
	}
	out := make([]core.Delivery, nd)
	var prev time.Time
	for i := range out {
		d := &out[i]
		d.ID, d.EventID, d.ProjectID, d.WebhookID, d.URI = r.str(0), r.str(1), r.str(2), r.str(3), r.str(4)
		d.Dest, d.EventType, d.Status = r.str(5), r.str(6), core.DeliveryStatus(r.str(7))
		d.LastError, d.LeaseOwner = r.str(8), r.str(9)
		d.Attempts = int(r.varint())
		d.LastStatusCode = int(r.varint())
		d.ScheduleBase = int(r.varint())
		if len(r.b) == 0 {
			return nil, errDeferData
		}
		d.Manual = r.b[0] == 1
		r.b = r.b[1:]
		d.CreateTime = r.time(prev)
		d.NextAttemptTime = r.time(d.CreateTime)
		d.ScheduleStart = r.time(d.CreateTime)
		d.UpdateTime = r.time(d.CreateTime)
		prev = d.CreateTime
		if r.err != nil {
			return nil, r.err
		}
	}
	if len(r.b) != 0 {
		return nil, errDeferData
	}
	return out, nil
}
