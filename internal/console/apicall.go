package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// apiError is an API error response in the Google envelope.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Message }

// call sends one request to the API handler in process, authenticated as
// the session's key (and, for an admin key, in the session's project),
// and decodes a 200 response into out (nil: ignore it).
func (c *Console) call(ctx context.Context, s *session, method, path string, body, out any) error {
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-goog-api-key", s.key)
	if s.admin {
		req.Header.Set("x-longhook-project", s.project)
	}
	rec := &recorder{header: http.Header{}}
	c.d.API.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.status != http.StatusOK {
		var env struct {
			Error struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
				Status  string `json:"status"`
			} `json:"error"`
		}
		if err := json.Unmarshal(rec.body.Bytes(), &env); err != nil || env.Error.Message == "" {
			return &apiError{Status: rec.status, Message: fmt.Sprintf("the API answered %d", rec.status)}
		}
		return &apiError{Status: rec.status, Code: env.Error.Status, Message: env.Error.Message}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(rec.body.Bytes(), out)
}

// recorder is a minimal in-memory http.ResponseWriter for call.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
