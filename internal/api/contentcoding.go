package api

import (
	"compress/gzip"
	"io"
	"net/http"
	"strings"

	"github.com/longhook/longhook/internal/core"
)

// decodeContent undoes the request body's Content-Encoding (RFC 9110
// §8.4): none or identity leaves it as it is; gzip (or its old name
// x-gzip) is decompressed as it is read, and the decompressed body is held
// to the same limit as a plain one, so a small compressed body cannot
// unpack past it. Any other coding, or several, is refused with a message
// naming it: read as it came, a compressed body would be refused as
// invalid UTF-8 or JSON, or worse, stored as it is.
func decodeContent(w http.ResponseWriter, r *http.Request, limit int64) error {
	vals := r.Header["Content-Encoding"] // one map read on every request
	if len(vals) == 0 {
		return nil
	}
	coding := strings.TrimSpace(strings.Join(vals, ", "))
	switch {
	case coding == "" || strings.EqualFold(coding, "identity"):
		return nil
	case strings.EqualFold(coding, "gzip") || strings.EqualFold(coding, "x-gzip"):
	default:
		return core.Invalid("Content-Encoding", "Content-Encoding %q is not supported: send the body uncompressed or gzip-compressed (Content-Encoding: gzip).", coding)
	}
	r.Body = &gzipBody{w: w, compressed: r.Body, limit: limit}
	r.ContentLength = -1 // the compressed length says nothing of the body's
	r.Header.Del("Content-Encoding")
	return nil
}

// gzipBody decompresses a gzip request body on its first read (so a
// handler that never reads it costs nothing), held to limit bytes.
type gzipBody struct {
	w          http.ResponseWriter
	compressed io.ReadCloser
	limit      int64
	body       io.Reader
}

func (g *gzipBody) Read(p []byte) (int, error) {
	if g.body == nil {
		zr, err := gzip.NewReader(g.compressed)
		if err != nil {
			return 0, g.refuse(err)
		}
		g.body = http.MaxBytesReader(g.w, io.NopCloser(zr), g.limit)
	}
	n, err := g.body.Read(p)
	if err != nil && err != io.EOF {
		return n, g.refuse(err)
	}
	return n, err
}

// refuse words a body that is not gzip or is cut short; the size limit
// (*http.MaxBytesError) goes through as it is, for readBody to word.
func (g *gzipBody) refuse(err error) error {
	if _, ok := err.(*http.MaxBytesError); ok {
		return err
	}
	return core.Invalid("body", "The request body is not valid gzip (Content-Encoding: gzip): %v.", err)
}

func (g *gzipBody) Close() error { return g.compressed.Close() }
