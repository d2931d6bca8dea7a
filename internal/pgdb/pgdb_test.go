package pgdb

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestClassify is the one reading of PostgreSQL failures that the store
// and the gateway inbox share.
func TestClassify(t *testing.T) {
	t.Parallel()
	pg := func(code string) error { return fmt.Errorf("op: %w", &pgconn.PgError{Code: code}) }
	for _, tc := range []struct {
		err  error
		want Class
	}{
		{nil, Permanent},
		{pg("23505"), Permanent}, // unique violation: the request's own
		{pg("42P01"), Permanent}, // undefined table
		{pg("28P01"), Permanent}, // bad password
		{&ConnectError{pg("3D000")}, Permanent},
		{&LostError{pg("28000")}, Permanent},
		{pg("40001"), Safe},
		{pg("40P01"), Safe},
		{pg("55P03"), Safe},
		{pg("57P03"), Safe},
		{pg("53300"), Safe},
		{&ConnectError{errors.New("connection refused")}, Safe},
		{pg("57P01"), Unknown},
		{pg("57014"), Unknown},
		{pg("08006"), Unknown},
		{&LostError{errors.New("unexpected EOF")}, Unknown},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), Unknown},
		{context.Canceled, Permanent},
		{errors.New("something else"), Permanent},
	} {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
		}
		if Transient(tc.err) != (tc.want != Permanent) {
			t.Errorf("Transient(%v) disagrees with Classify", tc.err)
		}
	}
}
