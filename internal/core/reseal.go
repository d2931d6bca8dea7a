package core

import "context"

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
