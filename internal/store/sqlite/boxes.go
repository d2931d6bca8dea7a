package sqlite

// boxedString and boxedInt box a value once for as long as consecutive
// rows repeat it: the driver's arguments are interfaces, and each string
// or int64 put in one is an allocation. A group's rows repeat most of
// theirs — its events share a project, a type and a creation time; an
// event's deliveries their event; a group's leased deliveries their
// owner and lease expiry; a single webhook's deliveries its id.
type boxedString struct {
	s string
	v any
}

func (b *boxedString) box(s string) any {
	if b.v == nil || b.s != s {
		b.s, b.v = s, s
	}
	return b.v
}

type boxedInt struct {
	i int64
	v any
}

func (b *boxedInt) box(i int64) any {
	if b.v == nil || b.i != i {
		b.i, b.v = i, i
	}
	return b.v
}

// rowBoxes are an inserter's boxes of the values rows repeat.
type rowBoxes struct {
	event, project, hook, typ, owner boxedString
	next, created                    boxedInt
}
