package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/sameorigin"
)

const cookieName = "longhook_console"

// session is one signed-in browser. The API key's plaintext stays in this
// process's memory (it is what the console presents to the API for
// changes); it is never written anywhere nor sent back to the browser.
type session struct {
	id      string
	key     string // plaintext API key
	digest  []byte
	keyID   string
	admin   bool
	project string // the project shown; an admin key may switch it
	csrf    string
	expires time.Time // without use after this, the session ends
	ends    time.Time // however it is used, the session ends then
	// reveals are secrets a form made, kept for the one GET that shows
	// them (stash, take): the form redirects, so reloading the page does
	// not send it again (a second webhook, a second rotation).
	reveals map[string]reveal
}

// reveal is one secret waiting to be shown, until at most its expiry.
type reveal struct {
	view    any // createdView, adminReveal
	expires time.Time
}

// revealTTL is how long a stashed secret waits for its page; maxReveals
// bounds how many one session holds.
const (
	revealTTL  = 10 * time.Minute
	maxReveals = 8
)

// stash keeps v for one take by the session id and returns its token.
func (ss *sessions) stash(id string, v any, now time.Time) string {
	tok := randomToken()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[id]
	if s == nil {
		return tok // signed out meanwhile: the page says the secret is gone
	}
	if s.reveals == nil {
		s.reveals = map[string]reveal{}
	}
	for t, r := range s.reveals {
		if now.After(r.expires) || len(s.reveals) >= maxReveals {
			delete(s.reveals, t)
		}
	}
	s.reveals[tok] = reveal{view: v, expires: now.Add(revealTTL)}
	return tok
}

// take returns the view stashed under tok, once: r's GET uses it up; a
// HEAD (a link checker, a browser's probe) reads it and leaves it for
// the GET that shows it.
func (ss *sessions) take(r *http.Request, id, tok string, now time.Time) (any, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[id]
	if s == nil {
		return nil, false
	}
	rv, ok := s.reveals[tok]
	if r.Method != http.MethodHead {
		delete(s.reveals, tok)
	}
	if !ok || now.After(rv.expires) {
		return nil, false
	}
	return rv.view, true
}

// live reports whether s is still signed in at now.
func (s *session) live(now time.Time) bool {
	return !now.After(s.expires) && !now.After(s.ends)
}

// sessions is the in-memory session table. One API key holds at most
// perKey sessions (Deps.MaxSessionsPerKey); a session lasts ttl after its
// last use and maxAge at most (Deps.SessionTTL, Deps.SessionMaxAge).
type sessions struct {
	ttl    time.Duration
	maxAge time.Duration
	perKey int
	mu     sync.Mutex
	m      map[string]*session
}

func newSessions(ttl, maxAge time.Duration, perKey int) *sessions {
	return &sessions{ttl: ttl, maxAge: maxAge, perKey: perKey, m: map[string]*session{}}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (ss *sessions) create(key string, k core.APIKey, now time.Time) *session {
	d := sha256.Sum256([]byte(key))
	s := &session{id: randomToken(), key: key, digest: d[:], keyID: k.ID, admin: k.Admin,
		project: k.ProjectID, csrf: randomToken(), expires: now.Add(ss.ttl), ends: now.Add(ss.maxAge)}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var mine []*session       // the key's live sessions
	for id, o := range ss.m { // forget expired sessions as new ones start
		switch {
		case !o.live(now):
			delete(ss.m, id)
		case o.keyID == k.ID:
			mine = append(mine, o)
		}
	}
	if over := len(mine) - ss.perKey + 1; over > 0 {
		// The least recently used first: get extends expires on each use.
		slices.SortFunc(mine, func(a, b *session) int { return a.expires.Compare(b.expires) })
		for _, o := range mine[:over] {
			delete(ss.m, o.id)
		}
	}
	ss.m[s.id] = s
	return s
}

// get returns a live session and extends it.
func (ss *sessions) get(id string, now time.Time) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[id]
	if s == nil || !s.live(now) {
		delete(ss.m, id)
		return nil
	}
	s.expires = now.Add(ss.ttl)
	cp := *s
	return &cp
}

// alive reports whether the session is still signed in, without extending
// it (an open stream is not use: a page left open does not keep a session
// alive for ever).
func (ss *sessions) alive(id string, now time.Time) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[id]
	return s != nil && s.live(now)
}

func (ss *sessions) setProject(id, project string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if s := ss.m[id]; s != nil {
		s.project = project
	}
}

func (ss *sessions) drop(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, id)
}

// A change's outcome is shown once on the page it redirects to, as a
// flash message carried in the URL (?done=…). The message is signed with
// the session's CSRF secret (&ds=…) and shown only when the signature
// holds: otherwise a link from anywhere could make a console page say
// what its author wrote ("Key compromised: call …") in the console's
// own voice.

// doneURL is path with msg as its signed flash message.
func (s *session) doneURL(path, msg string) string {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + "done=" + url.QueryEscape(msg) + "&ds=" + s.flashMAC(msg)
}

func (s *session) flashMAC(msg string) string {
	m := hmac.New(sha256.New, []byte(s.csrf))
	m.Write([]byte("flash\x00" + msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// flash is the request's flash message when the console wrote it for
// this session, else "".
func (s *session) flash(q url.Values) string {
	msg := q.Get("done")
	if msg == "" || !hmac.Equal([]byte(q.Get("ds")), []byte(s.flashMAC(msg))) {
		return ""
	}
	return msg
}

// sessionKey carries the *session of a request.
type sessionKey struct{}

func sessionOf(r *http.Request) *session {
	s, _ := r.Context().Value(sessionKey{}).(*session)
	return s
}

// current resolves the request's session and checks that its key is still
// valid (one indexed look-up: revoking the key ends every session of it).
func (c *Console) current(r *http.Request) (*session, error) {
	ck, err := r.Cookie(cookieName)
	if err != nil || ck.Value == "" {
		return nil, nil
	}
	s := c.sessions.get(ck.Value, c.d.Clock.Now())
	if s == nil {
		return nil, nil
	}
	switch err := c.keyStillValid(r.Context(), s); {
	case errors.Is(err, errSessionEnded):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return s, nil
}

// errSessionEnded ends a request or a live stream whose session was signed
// out or expired, or whose API key was revoked or deleted.
var errSessionEnded = errors.New("console session ended")

// keyStillValid looks the session's API key up in the store (not a cache):
// errSessionEnded, and the session dropped, when the key is revoked or
// gone; a store error as it is.
func (c *Console) keyStillValid(ctx context.Context, s *session) error {
	k, err := c.d.Store.LookupAPIKey(ctx, s.digest)
	switch {
	case errors.Is(err, core.ErrNotFound) || err == nil && (!k.RevokeTime.IsZero() || k.ID != s.keyID):
		c.sessions.drop(s.id)
		return errSessionEnded
	}
	return err
}

// sessionStillValid is what an open stream checks every
// Deps.StreamRecheck: the session is still signed in and its key valid.
func (c *Console) sessionStillValid(ctx context.Context, s *session) error {
	if !c.sessions.alive(s.id, c.d.Clock.Now()) {
		return errSessionEnded
	}
	return c.keyStillValid(ctx, s)
}

// authed requires a session; without one GET pages redirect to sign-in.
func (c *Console) authed(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := c.current(r)
		if err != nil {
			c.fail(w, r, nil, err)
			return
		}
		if s == nil {
			// Clear a cookie that names no live session, and only such a
			// cookie: a form another site posts comes without the
			// SameSite=Strict cookie, and clearing it then would let any
			// page sign the operator out.
			bye := ""
			if ck, err := r.Cookie(cookieName); err == nil && ck.Value != "" {
				c.clearCookie(w, r)
				bye = "&bye=ended"
			}
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/console/signin?next="+url.QueryEscape(r.URL.RequestURI())+bye, http.StatusSeeOther)
				return
			}
			// A page, not a line of plain text: the operator who pressed a
			// button after the session ended needs the way back in.
			back, _ := backFrom(r)
			c.render(w, r, nil, http.StatusUnauthorized, "error", errorView{Title: "Signed out",
				Message: "Your console session ended (it expired, you signed out, or its API key was revoked), so nothing was changed. Sign in again, then repeat the change.",
				Back:    "/console/signin?next=" + url.QueryEscape(back), BackLabel: "Sign in again →"})
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)))
	})
}

// pageFunc renders a page for a signed-in session.
type pageFunc func(w http.ResponseWriter, r *http.Request, s *session)

func (c *Console) page(fn pageFunc) http.Handler {
	return c.authed(func(w http.ResponseWriter, r *http.Request) { fn(w, r, sessionOf(r)) })
}

// post guards a state change: same origin, a form body of bounded size,
// and the session's CSRF token.
func (c *Console) post(fn pageFunc) http.Handler {
	return c.authed(func(w http.ResponseWriter, r *http.Request) {
		s := sessionOf(r)
		if !c.sameOrigin(r) {
			c.render(w, r, s, http.StatusForbidden, "error", errorView{Title: "Refused",
				Message: "This form was sent from another site, so the console refused it."})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		if err := r.ParseForm(); err != nil {
			c.render(w, r, s, http.StatusBadRequest, "error", errorView{Title: "Bad request", Message: "The form could not be read."})
			return
		}
		if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(s.csrf)) != 1 {
			c.render(w, r, s, http.StatusForbidden, "error", errorView{Title: "Refused",
				Message: "The form's security token did not match this session. Reload the page and try again."})
			return
		}
		fn(w, r, s)
	})
}

// sameOrigin refuses cross-site requests (sameorigin.Request, with
// --public-url's origin as this site's too).
func (c *Console) sameOrigin(r *http.Request) bool { return sameorigin.Request(r, c.d.PublicURL) }

// secure reports whether the session cookie is Secure: the browser
// reached this server over TLS (served here, or ended at a proxy that
// says so), or --public-url is https — the site operators reach is
// HTTPS even when the proxy in front sends no X-Forwarded-Proto, and the
// cookie must then never travel over plain HTTP.
func (c *Console) secure(r *http.Request) bool {
	if sameorigin.TLS(r) {
		return true
	}
	u, err := url.Parse(c.d.PublicURL)
	return err == nil && strings.EqualFold(u.Scheme, "https")
}

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, id string) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/console/", HttpOnly: true,
		Secure: c.secure(r), SameSite: http.SameSiteStrictMode})
}

func (c *Console) clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/console/", MaxAge: -1, HttpOnly: true,
		Secure: c.secure(r), SameSite: http.SameSiteStrictMode})
}

// signinNotices say why the sign-in page is shown (?bye=…): fixed texts,
// so a link from elsewhere cannot make the page say anything else. It
// said nothing: after signing out, an expired session or revoking one's
// own key, the operator faced a bare sign-in form.
var signinNotices = map[string]string{
	"signedout": "You are signed out.",
	"ended":     "Your session ended (it expired, or its API key was revoked). Sign in again.",
	"revoked":   "You revoked the API key you were signed in with, so you are signed out. Sign in with another key.",
}

// signinPage shows the sign-in form.
func (c *Console) signinPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c.render(w, r, nil, http.StatusOK, "signin", signinView{Next: safeNext(q.Get("next")), Notice: signinNotices[q.Get("bye")]})
}

// signin checks the key and starts a session. The form has no CSRF token
// (there is no session yet); the same-origin check still applies, and
// signing someone in to their own key gains an attacker nothing.
func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	if !c.sameOrigin(r) {
		c.render(w, r, nil, http.StatusForbidden, "error", errorView{Title: "Refused",
			Message: "This form was sent from another site, so the console refused it."})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	_ = r.ParseForm()
	raw := strings.TrimSpace(r.PostForm.Get("key"))
	next := safeNext(r.PostForm.Get("next"))
	d := sha256.Sum256([]byte(raw))
	k, err := c.d.Store.LookupAPIKey(r.Context(), d[:])
	if raw == "" || errors.Is(err, core.ErrNotFound) || err == nil && !k.RevokeTime.IsZero() {
		c.render(w, r, nil, http.StatusUnauthorized, "signin", signinView{Next: next,
			Error: "That API key is not valid. Paste a key printed by longhook serve or created under Admin."})
		return
	}
	if err != nil {
		c.fail(w, r, nil, err)
		return
	}
	s := c.sessions.create(raw, k, c.d.Clock.Now())
	c.setCookie(w, r, s.id)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// safeNext keeps redirects inside the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/console/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/console/"
	}
	return next
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request, s *session) {
	c.sessions.drop(s.id)
	c.clearCookie(w, r)
	http.Redirect(w, r, "/console/signin?bye=signedout", http.StatusSeeOther)
}

// switchProject changes the project an admin session shows.
func (c *Console) switchProject(w http.ResponseWriter, r *http.Request, s *session) {
	if !s.admin {
		c.render(w, r, s, http.StatusForbidden, "error", errorView{Title: "Not allowed",
			Message: "Only an admin key can switch projects; this key belongs to one project."})
		return
	}
	p, err := c.d.Store.GetProject(r.Context(), r.PostForm.Get("project"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.sessions.setProject(s.id, p.ID)
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}
