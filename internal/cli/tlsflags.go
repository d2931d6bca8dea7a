package cli

import "github.com/longhook/longhook/internal/certs"

// addTLSFlags declares the TLS flags of `longhook serve` (each with its
// LONGHOOK_* environment fallback); domains receives --acme-domain's
// comma-separated list.
func addTLSFlags(fs *flagSet, c *certs.Config, domains *string) {
	fs.StringVar(&c.CertFile, "tls-cert", "", "PEM certificate chain to serve HTTPS with; re-read when the file changes")
	fs.StringVar(&c.KeyFile, "tls-key", "", "PEM private key of --tls-cert; re-read when the file changes")
	fs.StringVar(domains, "acme-domain", "", "comma-separated host names to obtain certificates for over ACME (cached in DATA_DIR/acme)")
	fs.StringVar(&c.ACMEDirectory, "acme-directory", "", "ACME directory URL (default Let's Encrypt production)")
	fs.StringVar(&c.ACMEDirectoryCA, "acme-directory-ca", "", "PEM CA bundle trusted for the ACME directory's HTTPS (private CAs)")
	fs.StringVar(&c.ACMEEmail, "acme-email", "", "ACME account contact for expiry notices")
	fs.StringVar(&c.ACMEHTTPAddr, "acme-http-addr", "", "serve ACME HTTP-01 challenges here (e.g. :80) and redirect other requests to https")
}
