package webhook

import (
	"context"
	"errors"
	"io"
	"net/http"
)

// DefaultMaxBodySize bounds the request body [Receiver.Handler] reads when
// [Receiver.MaxBodySize] is zero: 1 MiB, four times the largest event data
// a longhook server accepts from a publisher (256 KiB). Set MaxBodySize
// higher for a sender of larger events: a body over the limit is refused
// on every retry.
const DefaultMaxBodySize = 1 << 20

// Handler returns an http.Handler for a webhook endpoint that does what
// every receiver must, in the right order: read the raw body (at most
// MaxBodySize bytes), verify it, and answer 2xx only after fn, which does
// the work, returned nil. It answers:
//
//   - 204 No Content when fn returned nil: the sender stops retrying;
//   - 500 when fn returned an error: the sender retries later, so fn must
//     not have committed anything it cannot see again (the error itself is
//     not sent, only given to OnError);
//   - 401 for a signature that does not verify, a stale or future
//     timestamp, or a scheme the Receiver has no verifier for;
//   - 400 for missing or malformed webhook headers or an unreadable body;
//   - 413 for a body over MaxBodySize, 405 for a method other than POST;
//   - 503 when the JWKS cannot be fetched ([ErrJWKSFetch]): the message
//     may be genuine, so the sender should retry.
//
// Refusals carry the verification error's text, which never contains
// secrets, keys or bodies, so the sender's delivery log shows the reason
// (for a token of another project, only [ErrProject]'s text: the pinned
// project's id is not told to the sender; OnError gets the whole error).
//
// Delivery is at least once: the same message (the same res.ID) can arrive
// again after fn succeeded, if the answer was lost. fn should record res.ID
// in the same transaction as its work and return nil, without doing the work
// again, for an ID it has already recorded. body is the verified raw body;
// decode it in fn. ctx is the request's context.
func (r *Receiver) Handler(fn func(ctx context.Context, res *Result, body []byte) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			r.refuse(w, req, http.StatusMethodNotAllowed, errors.New("webhook: method not allowed, want POST"))
			return
		}
		limit := r.MaxBodySize
		if limit <= 0 {
			limit = DefaultMaxBodySize
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, limit))
		if err != nil {
			status := http.StatusBadRequest
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				status = http.StatusRequestEntityTooLarge
			}
			r.refuse(w, req, status, err)
			return
		}
		res, err := r.Verify(req.Context(), req.Header, body)
		if err != nil {
			r.refuse(w, req, verifyStatus(err), err)
			return
		}
		if err := fn(req.Context(), res, body); err != nil {
			r.report(req, http.StatusInternalServerError, err)
			http.Error(w, "webhook not processed; retry later", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// verifyStatus maps a verification error to the status Handler answers.
func verifyStatus(err error) int {
	switch {
	case errors.Is(err, ErrJWKSFetch):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrMissingHeader), errors.Is(err, ErrMalformed):
		return http.StatusBadRequest
	}
	return http.StatusUnauthorized
}

// refuse answers status with err's text and reports it. A token of another
// project is answered without the pinned project's id: the sender is
// unauthenticated, and any tenant of a shared server holds genuine tokens.
func (r *Receiver) refuse(w http.ResponseWriter, req *http.Request, status int, err error) {
	r.report(req, status, err)
	text := err.Error()
	if errors.Is(err, ErrProject) {
		text = ErrProject.Error()
	}
	http.Error(w, text, status)
}

// report passes an error answer to OnError, if set.
func (r *Receiver) report(req *http.Request, status int, err error) {
	if r.OnError != nil {
		r.OnError(req, status, err)
	}
}
