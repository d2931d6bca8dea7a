package core

// InsertAttempt inserts a into as, which is in attempt order (Number, then
// Time, then the order of recording), after every attempt that does not
// come later than a: the place it has when it was recorded last. The
// stores use it for the attempt they keep in the delivery row itself.
func InsertAttempt(as []Attempt, a Attempt) []Attempt {
	i := len(as)
	for i > 0 && (as[i-1].Number > a.Number || as[i-1].Number == a.Number && as[i-1].Time.After(a.Time)) {
		i--
	}
	as = append(as, Attempt{})
	copy(as[i+1:], as[i:])
	as[i] = a
	return as
}
