// Package certs gives `longhook serve` and `longhook gateway` their TLS:
// a certificate and key read from files and re-read when the files change
// (so a rotation by cert-manager, certbot or a cron job needs no restart),
// or certificates obtained and renewed over ACME (autocert, TLS-ALPN-01 on
// the TLS port and HTTP-01 on an optional plain-HTTP port). HTTP/2 is
// offered on every TLS listener.
package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// Config selects where certificates come from: files (CertFile and
// KeyFile), ACME (ACMEDomains), or neither (plain HTTP).
type Config struct {
	// CertFile and KeyFile are a PEM certificate chain and its private
	// key. Both are re-read on the first handshake after either file's
	// size or modification time changed.
	CertFile string `yaml:"cert"`
	KeyFile  string `yaml:"key"`
	// ACMEDomains are the host names to obtain certificates for; a
	// handshake for any other name is refused.
	ACMEDomains []string `yaml:"acme_domains"`
	// ACMEDirectory is the ACME directory URL (default Let's Encrypt
	// production); point it at staging, a private CA or a test server.
	ACMEDirectory string `yaml:"acme_directory"`
	// ACMEDirectoryCA is a PEM bundle trusted, besides the system roots,
	// when talking to ACMEDirectory (a private CA's own HTTPS).
	ACMEDirectoryCA string `yaml:"acme_directory_ca"`
	// ACMEEmail is the optional account contact for expiry notices.
	ACMEEmail string `yaml:"acme_email"`
	// ACMEHTTPAddr, if set, serves HTTP-01 challenges there (usually
	// ":80") and redirects every other request to https. Without it only
	// TLS-ALPN-01 is used, which needs the TLS port reachable as 443.
	ACMEHTTPAddr string `yaml:"acme_http_addr"`
	// CacheDir keeps the ACME account key and certificates across
	// restarts (the callers use DATA_DIR/acme).
	CacheDir string `yaml:"-"`
	// Logger receives reloads and ACME errors (default: discarded).
	Logger *slog.Logger `yaml:"-"`
}

// Enabled reports whether c asks for TLS at all.
func (c Config) Enabled() bool {
	return c.CertFile != "" || c.KeyFile != "" || len(c.ACMEDomains) > 0
}

// Configured reports whether any TLS setting is given, also an ACME one
// without a domain (which New refuses rather than serve plain HTTP).
func (c Config) Configured() bool {
	return c.Enabled() || c.ACMEHTTPAddr != "" || c.ACMEDirectory != "" || c.ACMEDirectoryCA != "" || c.ACMEEmail != ""
}

func (c Config) validate() error {
	switch {
	case (c.CertFile == "") != (c.KeyFile == ""):
		return errors.New("tls: --tls-cert and --tls-key go together")
	case c.CertFile != "" && len(c.ACMEDomains) > 0:
		return errors.New("tls: use either certificate files or ACME, not both")
	case len(c.ACMEDomains) > 0 && c.CacheDir == "":
		return errors.New("tls: ACME needs a cache directory")
	case len(c.ACMEDomains) == 0 && (c.ACMEHTTPAddr != "" || c.ACMEDirectory != "" || c.ACMEDirectoryCA != "" || c.ACMEEmail != ""):
		return errors.New("tls: ACME settings (--acme-email, --acme-http-addr, --acme-directory, --acme-directory-ca) without --acme-domain")
	}
	for _, d := range c.ACMEDomains {
		if !strings.Contains(strings.Trim(d, "."), ".") {
			return fmt.Errorf("tls: --acme-domain %q: ACME needs a fully qualified name", d)
		}
	}
	return nil
}

// TLS is the certificate source of one server; see New.
type TLS struct {
	cfg     Config
	config  *tls.Config
	acme    *autocert.Manager
	httpSrv *http.Server
	httpLn  net.Listener
}

// New checks cfg and prepares its certificate source: certificate files
// are loaded once now (so a bad pair fails the start), ACME certificates
// are obtained on the first handshake. With ACMEHTTPAddr it also listens
// there; Run serves it. New returns nil, nil when cfg is not Enabled.
func New(cfg Config) (*TLS, error) {
	if !cfg.Configured() {
		return nil, nil
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	t := &TLS{cfg: cfg}
	if cfg.CertFile != "" {
		r := &fileCert{certFile: cfg.CertFile, keyFile: cfg.KeyFile, log: cfg.Logger}
		if err := r.load(); err != nil {
			return nil, err
		}
		t.config = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.get, NextProtos: []string{"h2", "http/1.1"}}
		return t, nil
	}
	if err := t.newACME(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *TLS) newACME() error {
	cfg := t.cfg
	client := &acme.Client{DirectoryURL: cfg.ACMEDirectory, UserAgent: "longhook"}
	if cfg.ACMEDirectoryCA != "" {
		pem, err := os.ReadFile(cfg.ACMEDirectoryCA)
		if err != nil {
			return fmt.Errorf("tls: --acme-directory-ca: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("tls: --acme-directory-ca %s: no PEM certificate", cfg.ACMEDirectoryCA)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		client.HTTPClient = &http.Client{Transport: tr, Timeout: time.Minute}
	}
	t.acme = &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(cfg.CacheDir),
		HostPolicy: autocert.HostWhitelist(cfg.ACMEDomains...),
		Email:      cfg.ACMEEmail,
		Client:     client,
	}
	t.config = t.acme.TLSConfig() // h2, http/1.1 and acme-tls/1
	t.config.MinVersion = tls.VersionTLS12
	if cfg.ACMEHTTPAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", cfg.ACMEHTTPAddr)
	if err != nil {
		return fmt.Errorf("tls: --acme-http-addr: %w", err)
	}
	t.httpLn = ln
	challenges := t.acme.HTTPHandler(nil) // everything but a challenge → https
	t.httpSrv = &http.Server{
		// autocert checks the Host header against its whitelist as is; a
		// port in it (a validator reaching a port other than 80, as behind
		// a port forward) would fail the challenge.
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if host, _, err := net.SplitHostPort(r.Host); err == nil {
				r.Host = host
			}
			challenges.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	return nil
}

// Config is the tls.Config to serve with: set it as http.Server.TLSConfig
// and call ServeTLS(ln, "", "").
func (t *TLS) Config() *tls.Config { return t.config }

// HTTPAddr is the bound address of the ACME HTTP-01 listener, or nil.
func (t *TLS) HTTPAddr() net.Addr {
	if t.httpLn == nil {
		return nil
	}
	return t.httpLn.Addr()
}

// Run serves the HTTP-01 listener, if any, until ctx is done. It returns
// nil at once when there is nothing to serve.
func (t *TLS) Run(ctx context.Context) error {
	if t.httpSrv == nil {
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- t.httpSrv.Serve(t.httpLn) }()
	select {
	case err := <-done:
		return fmt.Errorf("tls: acme http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = t.httpSrv.Shutdown(sctx)
	<-done
	return nil
}

// Close releases the HTTP-01 listener when Run was never called.
func (t *TLS) Close() {
	if t != nil && t.httpLn != nil {
		t.httpLn.Close()
	}
}

// fileCert serves a key pair from files, re-reading them when either
// file's size or modification time changes. The stat of two files costs a
// few microseconds against a handshake's milliseconds, and a failed
// reload (say the certificate was written before its key) keeps the
// previous pair and is retried on the next handshake.
type fileCert struct {
	certFile, keyFile string
	log               *slog.Logger

	mu       sync.Mutex
	cert     *tls.Certificate
	certStat stamp
	keyStat  stamp
}

type stamp struct {
	size int64
	mod  time.Time
}

func (s stamp) same(o stamp) bool { return s.size == o.size && s.mod.Equal(o.mod) }

func statOf(path string) (stamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}, err
	}
	return stamp{fi.Size(), fi.ModTime()}, nil
}

func (f *fileCert) load() error {
	cs, err := statOf(f.certFile)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	ks, err := statOf(f.keyFile)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	pair, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	f.cert, f.certStat, f.keyStat = &pair, cs, ks
	return nil
}

func (f *fileCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cs, err1 := statOf(f.certFile)
	ks, err2 := statOf(f.keyFile)
	if err1 == nil && err2 == nil && (!cs.same(f.certStat) || !ks.same(f.keyStat)) {
		if err := f.load(); err != nil {
			f.log.Warn("tls.reload_failed", slog.String("error", err.Error()))
		} else {
			f.log.Info("tls.reloaded", slog.String("cert", f.certFile))
		}
	}
	return f.cert, nil
}
