package core

import (
	"errors"
	"fmt"
)

// Sentinel errors of the domain. The API maps each to a Google error status
// in one table (internal/api/errors.go).
var (
	// ErrNotFound: the resource does not exist in this project.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: a resource with the same identity exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrUnauthenticated: missing, unknown or revoked API key.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrPermissionDenied: the key may not do this.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrFailedPrecondition: the resource is not in a state that allows it.
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrUnavailable: the server is shutting down or overloaded.
	ErrUnavailable = errors.New("unavailable")
	// ErrResourceExhausted: the caller holds too much of a limited
	// resource (open streams of one API key); retry after releasing some.
	ErrResourceExhausted = errors.New("resource exhausted")
)

// InvalidArgumentError reports bad input; Field names the offending field.
type InvalidArgumentError struct {
	Field   string
	Message string
}

func (e *InvalidArgumentError) Error() string { return e.Message }

// Invalid returns an InvalidArgumentError for field with a formatted message.
func Invalid(field, format string, args ...any) error {
	return &InvalidArgumentError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// IsInvalid reports whether err is (or wraps) an InvalidArgumentError.
func IsInvalid(err error) bool {
	var ie *InvalidArgumentError
	return errors.As(err, &ie)
}

// MessageError gives a sentinel error a client-safe message: it matches
// its sentinel with errors.Is, and the API shows Message instead of the
// sentinel's generic text.
type MessageError struct {
	Message string
	Err     error
}

func (e *MessageError) Error() string { return e.Message }

// Unwrap returns the sentinel.
func (e *MessageError) Unwrap() error { return e.Err }

// Errorf returns a MessageError for sentinel (e.g. ErrNotFound) with a
// formatted message.
func Errorf(sentinel error, format string, args ...any) error {
	return &MessageError{Message: fmt.Sprintf(format, args...), Err: sentinel}
}

// OrNotFound gives an error matching ErrNotFound the client message
// "<what> was not found."; any other error (or nil) is returned as is.
func OrNotFound(err error, what string) error {
	if errors.Is(err, ErrNotFound) {
		return Errorf(ErrNotFound, "%s was not found.", what)
	}
	return err
}
