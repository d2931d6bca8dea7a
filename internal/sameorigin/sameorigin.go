// Package sameorigin is the cross-site check of the consoles' forms (serve's
// /console/ and the gateway's /_longhook/console/), which sit behind the
// same kinds of reverse proxies.
package sameorigin

import (
	"net/http"
	"net/url"
	"strings"
)

// Request reports whether r comes from a page of this site: its Origin
// (or, without one, its Referer) names the host the request was sent to,
// the host a reverse proxy says it forwarded (X-Forwarded-Host), or the
// origin of publicURL ("" for none). A proxy that rewrites Host (nginx's
// default proxy_pass sends the upstream's) would otherwise make every form
// "another site". A cross-site page cannot set X-Forwarded-Host: a form
// cannot carry custom headers, and a fetch with one needs a CORS preflight
// neither console grants. A browser's Sec-Fetch-Site of cross-site or
// same-site refuses the request whatever it names.
func Request(r *http.Request, publicURL string) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return false
	}
	src := r.Header.Get("Origin")
	if src == "" || src == "null" {
		src = r.Header.Get("Referer")
	}
	if src == "" || src == "null" {
		return false
	}
	u, err := url.Parse(src)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	if fwd := first(r.Header.Get("X-Forwarded-Host")); fwd != "" && strings.EqualFold(u.Host, fwd) {
		return true
	}
	pub, err := url.Parse(publicURL)
	return publicURL != "" && err == nil && pub.Host != "" && strings.EqualFold(u.Scheme, pub.Scheme) && strings.EqualFold(u.Host, pub.Host)
}

// TLS reports whether the browser reached r's server over TLS: served
// with TLS here, or through a proxy that says it terminated TLS
// (X-Forwarded-Proto: https). It is for a cookie's Secure flag, which a
// false header can make stricter, never weaker.
func TLS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(first(r.Header.Get("X-Forwarded-Proto")), "https")
}

// first is the first of a header's comma-separated values (a chain of
// proxies appends theirs).
func first(v string) string {
	v, _, _ = strings.Cut(v, ",")
	return strings.TrimSpace(v)
}
