package sqlite

// boxed boxes a value once for as long as consecutive rows repeat it:
// the driver's arguments are interfaces, and each string or int64 put in
// one is an allocation. A group's rows repeat most of theirs — its events
// share a project, a type and a creation time; an event's deliveries their
// event; a group's leased deliveries their owner and lease expiry; a
// single webhook's deliveries its id.
type boxed[T comparable] struct {
	x T
	v any
}

func (b *boxed[T]) box(x T) any {
	if b.v == nil || b.x != x {
		b.x, b.v = x, x
	}
	return b.v
}

type (
	boxedString = boxed[string]
	boxedInt    = boxed[int64]
)

// rowBoxes are an inserter's boxes of the values rows repeat.
type rowBoxes struct {
	event, project, hook, typ, owner boxedString
	next, created                    boxedInt
}
