package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"

	"github.com/longhook/longhook/internal/core"
)

// Page tokens are opaque to clients and tamper-evident: base64url of the
// cursor (the last id of the previous page) followed by a 16-byte
// HMAC-SHA256 tag over (collection, project, cursor) under
// Deps.PageTokenKey. A token minted for one project or one collection is
// rejected by every other, and an edited token fails the tag check. Tokens
// do not expire; they stay valid as long as the key does.

const (
	pageTagSize     = 16
	defaultPageSize = 50
	maxPageSize     = 1000
)

// pageTokenEncoding decodes strictly: the unused bits of the last digit
// must be zero, and decode refuses the CR and LF the decoder would skip,
// so a token has exactly one spelling (found by FuzzPageToken).
var pageTokenEncoding = base64.RawURLEncoding.Strict()

// pageTokens mints and checks page tokens.
type pageTokens struct{ key []byte }

func (p pageTokens) tag(collection, projectID, cursor string) []byte {
	m := hmac.New(sha256.New, p.key)
	// Length-prefix every part so no two tuples share an encoding.
	for _, s := range []string{collection, projectID, cursor} {
		m.Write([]byte(strconv.Itoa(len(s))))
		m.Write([]byte{':'})
		m.Write([]byte(s))
	}
	return m.Sum(nil)[:pageTagSize]
}

// encode returns the token that resumes collection after cursor.
func (p pageTokens) encode(collection, projectID, cursor string) string {
	buf := append([]byte(cursor), p.tag(collection, projectID, cursor)...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// decode returns the cursor of a token; an empty token means the first page.
func (p pageTokens) decode(collection, projectID, token string) (string, error) {
	if token == "" {
		return "", nil
	}
	if strings.ContainsAny(token, "\r\n") { // the decoder skips them
		return "", badPageToken()
	}
	buf, err := pageTokenEncoding.DecodeString(token)
	if err != nil || len(buf) <= pageTagSize {
		return "", badPageToken()
	}
	cursor := string(buf[:len(buf)-pageTagSize])
	if !hmac.Equal(buf[len(buf)-pageTagSize:], p.tag(collection, projectID, cursor)) {
		return "", badPageToken()
	}
	return cursor, nil
}

func badPageToken() error {
	return core.Invalid("page_token", "page_token is invalid: pass the next_page_token of the previous response unchanged, with the same API key")
}

// page reads the page_size and page_token of a list call on collection
// (the Gemini SDKs spell them pageSize and pageToken; both are accepted)
// and returns the size and the cursor to resume after.
func (p pageTokens) page(q url.Values, collection, projectID string) (size int, cursor string, err error) {
	if size, err = pageSize(q); err != nil {
		return 0, "", err
	}
	if cursor, err = p.decode(collection, projectID, pageToken(q)); err != nil {
		return 0, "", err
	}
	return size, cursor, nil
}

// pageToken reads page_token (or pageToken).
func pageToken(q url.Values) string {
	if t := q.Get("page_token"); t != "" {
		return t
	}
	return q.Get("pageToken")
}

// pageSize reads page_size (or pageSize): default 50, values above 1000 are coerced to
// 1000 (as Google's list methods do), negatives and non-numbers are 400.
func pageSize(q url.Values) (int, error) {
	s := q.Get("page_size")
	if s == "" {
		s = q.Get("pageSize")
	}
	if s == "" {
		return defaultPageSize, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, core.Invalid("page_size", "page_size must be a non-negative integer (default %d, max %d), got %q", defaultPageSize, maxPageSize, s)
	}
	switch {
	case n == 0:
		return defaultPageSize, nil
	case n > maxPageSize:
		return maxPageSize, nil
	}
	return n, nil
}

// trimPage cuts a page fetched with limit size+1 back to size and reports
// whether another page follows. Drivers cap list limits at 1000, so at the
// maximum page size a full page may hide the extra row; another page is
// then assumed, which may turn out empty.
func trimPage[T any](items []T, size int) ([]T, bool) {
	if len(items) > size {
		return items[:size], true
	}
	return items, size == maxPageSize && len(items) == size
}
