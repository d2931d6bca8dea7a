package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/longhook/longhook/internal/core"
)

// errorStatus is one row of the error table: a domain error and the Google
// status it becomes on the wire.
type errorStatus struct {
	err    error
	code   int
	status string
	// message is shown when the error carries no client-safe message of
	// its own (see core.MessageError).
	message string
}

// errorTable maps the domain's sentinel errors to Google error statuses
// (docs/contract.md §1). It is the only place where that mapping lives.
// core.InvalidArgumentError is handled before the table: it is a type, not
// a sentinel. Anything that matches no row is 500 INTERNAL.
//
// ALREADY_EXISTS (409) is reserved for conflicts that can go away: the
// official SDK retries 409.
var errorTable = []errorStatus{
	{core.ErrNotFound, http.StatusNotFound, "NOT_FOUND", "Requested entity was not found."},
	{core.ErrUnauthenticated, http.StatusUnauthorized, "UNAUTHENTICATED", "Request is missing a valid API key."},
	{core.ErrPermissionDenied, http.StatusForbidden, "PERMISSION_DENIED", "The caller does not have permission."},
	{core.ErrAlreadyExists, http.StatusConflict, "ALREADY_EXISTS", "The resource already exists."},
	{core.ErrFailedPrecondition, http.StatusBadRequest, "FAILED_PRECONDITION", "The resource is not in a state that allows this operation."},
	{core.ErrUnavailable, http.StatusServiceUnavailable, "UNAVAILABLE", "The service is currently unavailable; retry later."},
	{core.ErrResourceExhausted, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", "Resource has been exhausted."},
	// A request that ran out of time (e.g. a publish waiting for its
	// commit) is safe to retry: publish carries an idempotency key.
	{context.DeadlineExceeded, http.StatusServiceUnavailable, "UNAVAILABLE", "The request timed out; retry later."},
	// A path served with other methods (the Allow header names them).
	// UNIMPLEMENTED is the google.rpc.Code for an operation the service
	// does not support, and what grpc-gateway answers a method mismatch
	// with; the HTTP status stays 405, which RFC 9110 (section 15.5.6)
	// defines for exactly this case.
	{errMethodNotAllowed, http.StatusMethodNotAllowed, "UNIMPLEMENTED", "The method is not allowed on this path."},
}

// errMethodNotAllowed is a request whose path is served with other
// methods only (server.notFound).
var errMethodNotAllowed = errors.New("method not allowed")

var (
	invalidStatus  = errorStatus{code: http.StatusBadRequest, status: "INVALID_ARGUMENT"}
	internalStatus = errorStatus{code: http.StatusInternalServerError, status: "INTERNAL", message: "Internal error encountered."}
)

// errorf returns an error that matches sentinel with errors.Is and whose
// message is shown to the client (core.Errorf).
func errorf(sentinel error, format string, args ...any) error {
	return core.Errorf(sentinel, format, args...)
}

// errorBody is the Google error envelope.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
}

// classify finds the wire status and the client-visible message for err.
func classify(err error) (errorStatus, string) {
	var ie *core.InvalidArgumentError
	if errors.As(err, &ie) {
		return invalidStatus, ie.Message
	}
	for _, row := range errorTable {
		if errors.Is(err, row.err) {
			msg := row.message
			var me *core.MessageError
			if errors.As(err, &me) {
				msg = me.Message
			}
			return row, msg
		}
	}
	return internalStatus, internalStatus.message
}

// WriteError answers err in the Google error envelope, mapping domain
// errors through the error table. Unexpected errors become 500 INTERNAL with
// a generic message and are logged (with logger, or slog.Default when nil);
// their text never reaches the client.
func WriteError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	st, msg := classify(err)
	if st.code == http.StatusInternalServerError {
		if logger == nil {
			logger = slog.Default()
		}
		if r.Context().Err() != nil {
			// The client went away; nothing to report.
			logger.LogAttrs(r.Context(), slog.LevelDebug, "api.request_canceled",
				slog.String("method", r.Method), slog.String("route", r.Pattern))
		} else {
			logger.LogAttrs(r.Context(), slog.LevelError, "api.internal_error",
				slog.String("method", r.Method), slog.String("route", r.Pattern), slog.Any("err", err))
		}
	}
	if interactionRoute(r) {
		WriteJSON(w, st.code, interactionErrorBody{Error: interactionError{Code: st.status, Message: msg, Status: st.status}})
		return
	}
	WriteJSON(w, st.code, errorBody{Error: errorDetail{Code: st.code, Message: msg, Status: st.status}})
}

// interactionErrorBody is the error shape of the Interactions API, which
// its SDKs read: error.code is a string there (the Go SDK cannot decode
// the Google envelope's number, and so showed no message). code and status
// are both the Google status name, so clients of either shape read it.
type interactionErrorBody struct {
	Error interactionError `json:"error"`
}

type interactionError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
}

// interactionRoute reports whether r is a call of the Interactions API
// (/{v}/interactions...), which answers errors in its own shape.
func interactionRoute(r *http.Request) bool {
	p := routePath(r)
	_, rest, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	return versioned(p) && (rest == "interactions" || strings.HasPrefix(rest, "interactions/") || strings.HasPrefix(rest, "interactions:"))
}
