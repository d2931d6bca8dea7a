package core

import (
	"context"
	"errors"
	"fmt"
)

// SealedKind names the kind of a SealedValue.
type SealedKind string

// The kinds of values a store holds sealed under the master key.
const (
	SealedWebhookSecret SealedKind = "webhook secret"
	SealedSigningKey    SealedKind = "signing key"
)

// SealedValue is one value a store holds sealed under the master key (see
// Cipher).
type SealedValue struct {
	Kind SealedKind
	// ID names the value: WEBHOOK_ID/SECRET_ID for a webhook secret, the
	// key id for a signing key.
	ID     string
	Sealed []byte
}

// Resealer is a store whose sealed values can be re-sealed in place, for
// master key rotation (`longhook master-key`; docs/design.md, "Master key
// rotation").
type Resealer interface {
	// ResealSecrets reads every sealed value (webhook secrets, then
	// signing keys) in one transaction, passes them to fn, and writes
	// what fn returns in their place in the same transaction: fn returns
	// one entry per value, nil to keep the value as it is. An error from
	// fn rolls back and is returned as it is; nothing is changed then.
	ResealSecrets(ctx context.Context, fn func(values []SealedValue) ([][]byte, error)) error
}

// Reseal runs a ResealSecrets callback fn on vals for a store: it checks
// that fn returned one entry per value, and marks an error of fn's own so
// that CallbackError gets it back, as it came, past the store's
// transaction and wrapping.
func Reseal(fn func(values []SealedValue) ([][]byte, error), vals []SealedValue) ([][]byte, error) {
	repl, err := fn(vals)
	if err != nil {
		return nil, callbackError{err}
	}
	if len(repl) != len(vals) {
		return nil, fmt.Errorf("reseal callback returned %d values for %d", len(repl), len(vals))
	}
	return repl, nil
}

// CallbackError returns the callback's own error if Reseal's marked err,
// else nil.
func CallbackError(err error) error {
	var ce callbackError
	if errors.As(err, &ce) {
		return ce.err
	}
	return nil
}

// callbackError carries a ResealSecrets callback's error out of the
// store's transaction.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }
