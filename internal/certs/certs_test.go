package certs_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/letsencrypt/challtestsrv"
	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"

	"github.com/longhook/longhook/internal/certs"
	"github.com/longhook/longhook/internal/certs/certtest"
)

// serveTLS serves a small handler with t's certificates on loopback until
// the test ends and returns its address.
func serveTLS(tb testing.TB, ln net.Listener, c *certs.TLS) {
	tb.Helper()
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }),
		TLSConfig:         c.Config(),
		ReadHeaderTimeout: 5 * time.Second,
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		srv.Close()
		<-done
		if err := <-runDone; err != nil {
			tb.Error(err)
		}
	})
}

// servedLeaf makes one request on a new connection and returns the leaf
// certificate the server presented (verified against the client's roots).
func servedLeaf(hc *http.Client, url string) (*x509.Certificate, *http.Response, error) {
	resp, err := hc.Get(url)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 || resp.TLS == nil {
		return nil, resp, fmt.Errorf("status %d, tls %v", resp.StatusCode, resp.TLS != nil)
	}
	return resp.TLS.PeerCertificates[0], resp, nil
}

func TestFileCertificateReloadedOnChange(t *testing.T) {
	t.Parallel()
	authority := certtest.NewCA(t)
	dir := t.TempDir()
	first := authority.Issue(t)
	certFile, keyFile := first.Write(t, dir)
	c, err := certs.New(certs.Config{CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveTLS(t, ln, c)
	url := "https://" + ln.Addr().String() + "/"
	hc := certtest.Client(authority.Pool)

	leaf, resp, err := servedLeaf(hc, url)
	if err != nil {
		t.Fatal(err)
	}
	if leaf.SerialNumber.Cmp(first.Serial) != 0 {
		t.Fatalf("served serial %v, want %v", leaf.SerialNumber, first.Serial)
	}
	if resp.ProtoMajor != 2 {
		t.Fatalf("protocol %s, want HTTP/2 on TLS", resp.Proto)
	}

	// A half-written rotation (a key that does not match) keeps the old pair.
	if err := os.WriteFile(keyFile, authority.Issue(t).KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if leaf, _, err = servedLeaf(hc, url); err != nil || leaf.SerialNumber.Cmp(first.Serial) != 0 {
		t.Fatalf("after a mismatched key: serial %v, err %v; want the old %v", leaf.SerialNumber, err, first.Serial)
	}

	second := authority.Issue(t)
	second.Write(t, dir)
	waitServed(t, hc, url, second.Serial)
}

// waitServed polls new connections until the server presents serial.
func waitServed(t *testing.T, hc *http.Client, url string, serial fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		leaf, _, err := servedLeaf(hc, url)
		if err == nil && leaf.SerialNumber.String() == serial.String() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replaced certificate %v is not served (last: %v, %v)", serial, leaf, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestConfigRejectsHalfSettings(t *testing.T) {
	t.Parallel()
	for _, c := range []certs.Config{
		{CertFile: "a.crt"},
		{KeyFile: "a.key"},
		{CertFile: "a.crt", KeyFile: "a.key", ACMEDomains: []string{"x.example"}, CacheDir: "d"},
		{ACMEDomains: []string{"localhost"}, CacheDir: "d"},
		{ACMEDomains: []string{"x.example"}},
		// ACME settings without a domain would serve plain HTTP while the
		// operator asked for ACME.
		{ACMEEmail: "ops@example.com"},
		{ACMEHTTPAddr: ":80"},
		{ACMEDirectory: "https://acme.example/directory"},
		{ACMEDirectoryCA: "ca.pem"},
	} {
		if _, err := certs.New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
	if c, err := certs.New(certs.Config{}); c != nil || err != nil {
		t.Errorf("New(empty) = %v, %v; want no TLS", c, err)
	}
	if _, err := certs.New(certs.Config{CertFile: "missing.crt", KeyFile: "missing.key"}); err == nil {
		t.Error("missing files accepted")
	}
}

// acmeDomain is resolved to 127.0.0.1 by the test's DNS server.
const acmeDomain = "longhook.test"

// TestACME obtains a certificate from an in-process pebble, once over
// TLS-ALPN-01 on the TLS port and once over HTTP-01 on --acme-http-addr
// (pebble's TLS-ALPN-01 port pointed at a closed port, so autocert falls
// back to HTTP-01), and checks the server then presents it.
func TestACME(t *testing.T) {
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	dnsAddr := startDNS(t)
	for _, challenge := range []string{"tls-alpn-01", "http-01"} {
		t.Run(challenge, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			acmeURL, caFile, start := startPebble(t, dir)
			cfg := certs.Config{ACMEDomains: []string{acmeDomain}, ACMEDirectory: acmeURL, ACMEDirectoryCA: caFile,
				CacheDir: filepath.Join(dir, "acme")}
			if challenge == "http-01" {
				cfg.ACMEHTTPAddr = "127.0.0.1:0"
			}
			c, err := certs.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			tlsPort, httpPort := port(t, ln.Addr()), closedPort(t)
			if challenge == "http-01" {
				tlsPort, httpPort = closedPort(t), port(t, c.HTTPAddr())
			}
			roots := start(httpPort, tlsPort, dnsAddr)
			serveTLS(t, ln, c)

			hc := certtest.Client(roots)
			hc.Timeout = time.Minute
			hc.Transport.(*http.Transport).TLSClientConfig.ServerName = acmeDomain
			leaf, _, err := servedLeaf(hc, "https://"+ln.Addr().String()+"/")
			if err != nil {
				t.Fatal(err)
			}
			if err := leaf.VerifyHostname(acmeDomain); err != nil {
				t.Fatal(err)
			}
			if entries, _ := os.ReadDir(cfg.CacheDir); len(entries) == 0 {
				t.Fatal("nothing cached in the ACME cache dir")
			}
		})
	}
}

// startPebble starts pebble's ACME front end over HTTPS; its validation
// authority is created by the returned start (once the ports of the
// server under test are known), which returns pebble's roots.
func startPebble(t *testing.T, dir string) (directory, caFile string, start func(httpPort, tlsPort int, dns string) *x509.CertPool) {
	var handler http.Handler = http.NotFoundHandler()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile = filepath.Join(dir, "pebble-https.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.URL + wfe.DirectoryPath, caFile, func(httpPort, tlsPort int, dns string) *x509.CertPool {
		logger := log.New(io.Discard, "", 0)
		store := db.NewMemoryStore()
		authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
		validator := va.New(logger, httpPort, tlsPort, false, dns, store)
		front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
		handler = front.Handler()
		roots := x509.NewCertPool()
		roots.AddCert(authority.GetRootCert(0).Cert)
		return roots
	}
}

// startDNS answers every A query with 127.0.0.1 and no AAAA.
func startDNS(t *testing.T) string {
	for try := 0; ; try++ {
		addr := freeUDPAndTCP(t)
		srv, err := challtestsrv.New(challtestsrv.Config{DNSAddrs: []string{addr}, Log: log.New(io.Discard, "", 0)})
		if err != nil {
			t.Fatal(err)
		}
		srv.SetDefaultDNSIPv6("")
		srv.Run()
		t.Cleanup(srv.Shutdown)
		if waitDNS(addr) == nil || try == 3 {
			return addr
		}
	}
}

func waitDNS(addr string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func freeUDPAndTCP(t *testing.T) string {
	for {
		tl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := tl.Addr().String()
		ul, err := net.ListenPacket("udp", addr)
		tl.Close()
		if err == nil {
			ul.Close()
			return addr
		}
		if !errors.Is(err, os.ErrExist) && !isAddrInUse(err) {
			t.Fatal(err)
		}
	}
}

func isAddrInUse(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

func port(t *testing.T, a net.Addr) int {
	_, p, err := net.SplitHostPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// closedPort is a loopback port nothing listens on a moment later.
func closedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return port(t, ln.Addr())
}
