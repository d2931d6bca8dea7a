package gateway

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/longhook/longhook/internal/console"
	"github.com/longhook/longhook/internal/sameorigin"
)

// ConsolePath is where the gateway console is served (Config.ConsoleToken).
const ConsolePath = "/_longhook/console/"

//go:embed consoleui/*.html
var consoleFS embed.FS

var consoleTmpl = template.Must(template.New("gateway.html").Funcs(template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
}).ParseFS(consoleFS, "consoleui/gateway.html"))

// forwardError is a sink's latest failed forward.
type forwardError struct {
	At  time.Time
	Seq int64
	Err string
}

// recentItem is one request to a source, as the console lists it.
type recentItem struct {
	At        time.Time
	Source    string
	WebhookID string
	Status    int
	Outcome   string // accepted, duplicate, refused, invalid, ...
	Reason    string
}

// recentLog keeps the last requests to every source in memory.
type recentLog struct {
	mu    sync.Mutex
	items []recentItem // ring, newest at next-1
	next  int
}

const recentMax = 200

func (l *recentLog) add(at time.Time, source string, status int, outcome string, attrs []slog.Attr) {
	it := recentItem{At: at, Source: source, Status: status, Outcome: outcome}
	for _, a := range attrs {
		switch a.Key {
		case "webhook_id":
			it.WebhookID = a.Value.String()
		case "error":
			it.Reason = strings.TrimPrefix(a.Value.String(), "webhook: ")
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.items) < recentMax {
		l.items = append(l.items, it)
	} else {
		l.items[l.next%recentMax] = it
	}
	l.next++
}

// list returns the items, newest first.
func (l *recentLog) list() []recentItem {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]recentItem, 0, len(l.items))
	for i := 1; i <= len(l.items); i++ {
		out = append(out, l.items[(l.next-i)%len(l.items)])
	}
	return out
}

type consoleSource struct {
	Name, Path, Verify string
}

type consoleSink struct {
	ID       string
	Kind     string
	Cursor   int64
	Lag      int64
	InFlight int
	Retrying int
	// Queue is the forwards waiting for their next attempt (the inbox's
	// retry table, dead ones left out). A failed forward leaves the log
	// for that table and the cursor moves past it, so a sink that is
	// down shows no lag: its backlog is here.
	Queue     int64
	LastError *forwardError
}

// replayView is a replay's dry run, waiting for confirmation.
type replayView struct {
	Sink   string
	Source string
	Since  string // as typed, UTC
	Count  int64
}

// SinceText is the replay's start as the page writes it.
func (v replayView) SinceText() string {
	if t, err := parseSince(v.Since); err == nil {
		return t.UTC().Format("2006-01-02 15:04")
	}
	return v.Since
}

type consoleView struct {
	SignedIn bool
	Error    string
	Flash    string
	CSRF     string
	LastSeq  int64
	Sources  []consoleSource
	Sinks    []consoleSink
	Recent   []recentItem
	Replay   *replayView
	Since    string // the replay form's default: an hour ago
	Now      time.Time
}

// consoleMAC derives a value from the console token: the cookie is one
// (checked without server state), the forms' CSRF token another.
func consoleMAC(token, purpose string) string {
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write([]byte(purpose))
	return hex.EncodeToString(mac.Sum(nil))
}

// consoleSessionAge is how long a console sign-in lasts.
const consoleSessionAge = 24 * time.Hour

// consoleCookie is the cookie of a sign-in that ends at end: the end in
// Unix seconds and an HMAC of it under the console token, so it is checked
// without server state and a copy of it is good until end only (not until
// console_token changes).
func consoleCookie(token string, end time.Time) string {
	e := strconv.FormatInt(end.Unix(), 10)
	return e + "." + consoleMAC(token, "longhook gateway console v2\x00"+e)
}

// consoleSigned reports whether v is a consoleCookie of token that has
// not ended at now.
func consoleSigned(token, v string, now time.Time) bool {
	e, mac, ok := strings.Cut(v, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(consoleMAC(token, "longhook gateway console v2\x00"+e))) {
		return false
	}
	end, err := strconv.ParseInt(e, 10, 64)
	return err == nil && now.Before(time.Unix(end, 0))
}

// console serves the gateway console: a token sign-in (the cookie holds an
// HMAC of the token and the sign-in's end, see consoleCookie), the page,
// and two actions, a replay and signing out, whose forms carry a CSRF
// token and must come from the console's own origin.
func (g *Gateway) console() http.Handler {
	csrf := consoleMAC(g.cfg.ConsoleToken, "longhook gateway console csrf v1")
	static := http.StripPrefix(ConsolePath+"static/", console.Assets())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		if strings.HasPrefix(r.URL.Path, ConsolePath+"static/") {
			static.ServeHTTP(w, r)
			return
		}
		ck, _ := r.Cookie("longhook_gateway_console")
		signed := ck != nil && consoleSigned(g.cfg.ConsoleToken, ck.Value, g.now())
		switch {
		case r.Method == http.MethodPost && r.URL.Path == ConsolePath+"signin":
			g.consoleSignIn(w, r)
		case r.Method == http.MethodPost && r.URL.Path == ConsolePath+"signout":
			g.consoleSignOut(w, r, csrf)
		case r.Method == http.MethodPost && r.URL.Path == ConsolePath+"replay":
			if !signed {
				http.Error(w, "sign in to the gateway console first", http.StatusForbidden)
				return
			}
			g.consoleReplay(w, r, csrf)
		case r.Method != http.MethodGet || r.URL.Path != ConsolePath:
			http.NotFound(w, r)
		case !signed:
			g.renderConsole(w, http.StatusOK, consoleView{})
		default:
			g.consolePage(w, r, csrf, http.StatusOK, nil, "")
		}
	})
}

// consolePage renders the signed-in page, with a replay's dry run or an
// error message when given.
func (g *Gateway) consolePage(w http.ResponseWriter, r *http.Request, csrf string, status int, rv *replayView, errMsg string) {
	v, err := g.consoleData(r.Context())
	if err != nil {
		g.log.Error("gateway.console", slog.Any("error", err))
		http.Error(w, "the inbox could not be read", http.StatusInternalServerError)
		return
	}
	v.CSRF, v.Replay, v.Error = csrf, rv, errMsg
	// The replay's outcome line is shown only when this console signed
	// it: a link could otherwise make the page say anything.
	if q := r.URL.Query(); q.Get("done") != "" && hmac.Equal([]byte(q.Get("ds")), []byte(consoleMAC(csrf, "done\x00"+q.Get("done")))) {
		v.Flash = q.Get("done")
	}
	v.Since = v.Now.Add(-time.Hour).UTC().Format(timeInput)
	g.renderConsole(w, status, v)
}

// sameOrigin reports whether a POST comes from a page of this site
// (sameorigin.Request: the request's host or the host a reverse proxy
// forwarded).
func sameOrigin(r *http.Request) bool { return sameorigin.Request(r, "") }

// consoleForm parses a console form (at most 8 KiB) and reports whether
// it may act: it must come from the console's own origin and carry the
// CSRF token; a refusal is answered here (403).
func consoleForm(w http.ResponseWriter, r *http.Request, csrf string) bool {
	if !sameOrigin(r) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	_ = r.ParseForm()
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(csrf)) != 1 {
		http.Error(w, "the form's token is missing or stale: reload the console", http.StatusForbidden)
		return false
	}
	return true
}

// timeInput is the datetime-local form of a UTC time.
const timeInput = "2006-01-02T15:04"

// consoleReplay counts (the dry run) or starts a replay of a source's
// stored events since a time to one of its sinks.
func (g *Gateway) consoleReplay(w http.ResponseWriter, r *http.Request, csrf string) {
	if !consoleForm(w, r, csrf) {
		return
	}
	rv := &replayView{Sink: r.PostForm.Get("sink"), Since: r.PostForm.Get("since")}
	var f *forwarder
	for _, fw := range g.forwarders {
		if fw.id == rv.Sink {
			f = fw
		}
	}
	if f == nil {
		g.consolePage(w, r, csrf, http.StatusBadRequest, nil, "There is no sink "+strconvQuote(rv.Sink)+".")
		return
	}
	rv.Source = f.source
	since, err := parseSince(rv.Since)
	if err != nil {
		g.consolePage(w, r, csrf, http.StatusBadRequest, nil, "From: "+err.Error())
		return
	}
	from, n, err := g.inbox.Since(r.Context(), f.source, since)
	if err != nil {
		g.log.Error("gateway.console.replay", slog.String("sink", f.id), slog.Any("error", err))
		http.Error(w, "the inbox could not be read", http.StatusInternalServerError)
		return
	}
	rv.Count = n
	if r.PostForm.Get("confirm") != "yes" {
		g.consolePage(w, r, csrf, http.StatusOK, rv, "")
		return
	}
	f.replay(from)
	g.log.Info("gateway.replay", slog.String("sink", f.id), slog.Time("since", since), slog.Int64("from_seq", from), slog.Int64("events", n))
	noun := "events"
	if n == 1 {
		noun = "event"
	}
	done := fmt.Sprintf("Replaying %d %s of %s received since %s UTC to %s.", n, noun, f.source, since.UTC().Format("2006-01-02 15:04"), f.id)
	http.Redirect(w, r, ConsolePath+"?done="+url.QueryEscape(done)+"&ds="+consoleMAC(csrf, "done\x00"+done), http.StatusSeeOther)
}

// parseSince reads the replay form's time: datetime-local (UTC) or RFC 3339.
func parseSince(s string) (time.Time, error) {
	for _, layout := range []string{timeInput, "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%s is not a time like 2026-05-05T12:00 (UTC)", strconvQuote(s))
}

func strconvQuote(s string) string { return strconv.Quote(truncate(s, 100)) }

func (g *Gateway) consoleSignIn(w http.ResponseWriter, r *http.Request) {
	if origin := r.Header.Get("Origin"); origin == "" || !sameOrigin(r) {
		http.Error(w, "cross-origin sign-in refused", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	_ = r.ParseForm()
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("token")), []byte(g.cfg.ConsoleToken)) != 1 {
		g.renderConsole(w, http.StatusUnauthorized, consoleView{Error: "That token is not the gateway's console_token."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: "longhook_gateway_console", Path: ConsolePath,
		Value: consoleCookie(g.cfg.ConsoleToken, g.now().Add(consoleSessionAge)), MaxAge: int(consoleSessionAge / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: sameorigin.TLS(r)})
	http.Redirect(w, r, ConsolePath, http.StatusSeeOther)
}

// consoleSignOut clears the console's cookie in this browser. The form
// carries the CSRF token and must come from the console's own origin, so
// another site cannot sign the operator out. (The cookie is an HMAC of the
// token and the sign-in's end: a copy of it elsewhere stays valid until
// that end, 24 h after the sign-in, or until console_token changes.)
func (g *Gateway) consoleSignOut(w http.ResponseWriter, r *http.Request, csrf string) {
	if !consoleForm(w, r, csrf) {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: "longhook_gateway_console", Value: "", Path: ConsolePath, MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: sameorigin.TLS(r)})
	http.Redirect(w, r, ConsolePath, http.StatusSeeOther)
}

// consoleData reads the page: the log's end, every sink's cursor and lag.
func (g *Gateway) consoleData(ctx context.Context) (consoleView, error) {
	v := consoleView{SignedIn: true, Recent: g.recent.list(), Now: g.now()}
	last, err := g.inbox.LastSeq(ctx)
	if err != nil {
		return v, err
	}
	v.LastSeq = last
	queued, err := g.inbox.PendingRetries(ctx)
	if err != nil {
		return v, err
	}
	for _, s := range g.sources {
		verify := "Standard Webhooks HMAC"
		switch {
		case s.preset != nil:
			verify = "preset " + s.cfg.Verify.Kind
		case s.recv.JWKS != nil:
			verify = "JWT (JWKS)"
		case s.recv.HMAC == nil:
			verify = "none"
		}
		v.Sources = append(v.Sources, consoleSource{Name: s.cfg.Name, Path: s.cfg.Path, Verify: verify})
	}
	for _, f := range g.forwarders {
		cur := f.persisted.Load()
		f.mu.Lock()
		inflight, retrying := len(f.first), len(f.retrying)
		f.mu.Unlock()
		v.Sinks = append(v.Sinks, consoleSink{ID: f.id, Kind: sinkKind(f.cfg), Cursor: cur, Lag: max(last-cur, 0),
			InFlight: inflight, Retrying: retrying, Queue: queued[f.id], LastError: f.lastErr.Load()})
	}
	return v, nil
}

func (g *Gateway) renderConsole(w http.ResponseWriter, status int, v consoleView) {
	var buf bytes.Buffer
	if err := consoleTmpl.Execute(&buf, v); err != nil {
		g.log.Error("gateway.console.render", slog.Any("error", err))
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// sinkKind names a sink's transport as the config spells it.
func sinkKind(c SinkConfig) string {
	if kinds := c.kinds(); len(kinds) == 1 {
		return kinds[0]
	}
	return "other" // not a valid config
}
