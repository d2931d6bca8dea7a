package cli

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// listen exits as the client commands do when the server refuses its
// stream for good — 4 for a key it does not take, 5 for a webhook it does
// not have — with the server's message, not its JSON; it exited 1 and
// printed the error envelope as it came.
func TestListenRefusedExitCodes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		status int
		msg    string
		code   int
	}{
		{http.StatusUnauthorized, "API key not valid. Please pass a valid API key.", exitAuth},
		{http.StatusNotFound, "Webhook wh1 not found.", exitNotFound},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(c.status)
			fmt.Fprintf(w, `{"error":{"code":%d,"message":%q,"status":"UNAUTHENTICATED"}}`, c.status, c.msg)
		}))
		code, _, errs := run(t, nil, "listen", "--from", srv.URL+"/v1beta/webhooks/wh1", "--api-key", "k",
			"--forward-to", "http://127.0.0.1:1/", "--state", filepath.Join(t.TempDir(), "s.json"))
		srv.Close()
		if code != c.code || !strings.Contains(errs, c.msg) || strings.Contains(errs, `{"error"`) {
			t.Errorf("listen refused with %d: exit %d, %q; want exit %d and the message alone", c.status, code, errs, c.code)
		}
	}
}
