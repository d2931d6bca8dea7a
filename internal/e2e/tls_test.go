package e2e

import (
	"fmt"
	"io"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/certs/certtest"
)

// TestServeAndGatewayOverTLS runs serve and the gateway with certificate
// files from a generated CA: both answer over HTTPS with HTTP/2, and a
// certificate replaced on disk during the run is served on new
// connections without a restart.
func TestServeAndGatewayOverTLS(t *testing.T) {
	t.Parallel()
	authority := certtest.NewCA(t)
	hc := certtest.Client(authority.Pool)

	serveDir := t.TempDir()
	certFile, keyFile := authority.Issue(t).Write(t, serveDir)
	s := startServe(t, withFlags("--tls-cert", certFile, "--tls-key", keyFile))
	gwDir := t.TempDir()
	gwCert, gwKey := authority.Issue(t).Write(t, gwDir)
	gw := startGatewayWith(t, "https", func(string) string {
		return "sources:\n  - name: in\n    verify:\n      hmac_secrets: [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]\n    sinks:\n      - name: drop\n        discard: {}\n"
	}, "--tls-cert", gwCert, "--tls-key", gwKey)

	for _, c := range []struct {
		name, url, dir string
	}{{"serve", s.URL(), serveDir}, {"gateway", gw.URL, gwDir}} {
		resp, err := hc.Get(c.url + "/readyz")
		if err != nil {
			t.Fatalf("%s over https: %v", c.name, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
			t.Fatalf("%s: %s %s, want 200 over HTTP/2", c.name, resp.Proto, resp.Status)
		}
		// serve, which has the console, pins https for browsers (HSTS).
		if got := resp.Header.Get("Strict-Transport-Security"); c.name == "serve" && got != "max-age=31536000" {
			t.Errorf("serve over https: Strict-Transport-Security %q, want max-age=31536000", got)
		}
		next := authority.Issue(t)
		next.Write(t, c.dir)
		waitSerial(t, hc, c.url+"/readyz", next.Serial)
	}
	if resp, err := http.Get(s.URL()); err == nil { // the default client does not trust the test CA
		resp.Body.Close()
		t.Fatal("serve's certificate verified without the test CA")
	}
}

// waitSerial polls new connections until the leaf served has serial.
func waitSerial(t *testing.T, hc *http.Client, url string, serial *big.Int) {
	t.Helper()
	pollUntil(t, 15*time.Second, 20*time.Millisecond, "replaced certificate served", func() (bool, string) {
		resp, err := hc.Get(url)
		if err != nil {
			return false, err.Error()
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got := resp.TLS.PeerCertificates[0].SerialNumber
		return got.Cmp(serial) == 0, fmt.Sprintf("serial %v, want %v", got, serial)
	})
}
