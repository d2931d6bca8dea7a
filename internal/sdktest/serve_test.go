package sdktest

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/cli"
)

// server is a `longhook serve` running in this process.
type server struct {
	url    string // http://127.0.0.1:port (https:// with TLS)
	key    string // the bootstrap API key of the default project
	caFile string // with TLS: the PEM certificate clients must trust
}

// serveOption adjusts startServe.
type serveOption func(*serveConfig)

type serveConfig struct{ tls bool }

// withTLS serves HTTPS with a throwaway self-signed certificate for
// 127.0.0.1 (server.caFile).
func withTLS(c *serveConfig) { c.tls = true }

var listenLine = regexp.MustCompile(`^longhook \S+ listening on (https?://\S+)$`)

// startServe runs `longhook serve` on a free port and a fresh data dir,
// with short simulated model times, until t ends.
func startServe(t *testing.T, opts ...serveOption) *server {
	t.Helper()
	var cfg serveConfig
	for _, o := range opts {
		o(&cfg)
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	s := &server{key: "sdk_" + base64.RawURLEncoding.EncodeToString(b)}
	env := map[string]string{"LONGHOOK_BOOTSTRAP_API_KEY": s.key}
	args := []string{"serve", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--dev",
		"--sim-duration", "batch=100ms,video=200ms,interaction=100ms"}
	if cfg.tls {
		var keyFile string
		s.caFile, keyFile = selfSigned(t)
		args = append(args, "--tls-cert", s.caFile, "--tls-key", keyFile)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	exited := make(chan int, 1)
	go func() {
		exited <- cli.Run(ctx, args,
			cli.Env{Getenv: func(k string) string { return env[k] }, Stdout: w, Stderr: io.Discard})
		_ = w.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-exited; code != 0 {
			t.Errorf("serve exited with %d", code)
		}
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := listenLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case s.url = <-found:
	case <-time.After(60 * time.Second):
		t.Fatal("serve printed no listening line within 60 s")
	}
	return s
}

// receiver is a webhook endpoint that records what it receives.
type receiver struct {
	srv *httptest.Server
	got chan delivery
}

type delivery struct {
	header http.Header
	body   []byte
	event  map[string]any
}

func (d delivery) data() map[string]any {
	m, _ := d.event["data"].(map[string]any)
	return m
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{got: make(chan delivery, 100)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		d := delivery{header: req.Header.Clone(), body: body}
		_ = json.Unmarshal(body, &d.event)
		r.got <- d
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// next waits for the next delivery.
func (r *receiver) next(t *testing.T) delivery {
	t.Helper()
	select {
	case d := <-r.got:
		return d
	case <-time.After(60 * time.Second):
		t.Fatal("timed out waiting 60 s for a webhook delivery")
		return delivery{}
	}
}

// waitFor polls cond until it holds, for up to 60 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

// selfSigned writes a self-signed certificate (its own CA) for 127.0.0.1
// and localhost, and its key, and returns the two files.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "longhook sdktest"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
