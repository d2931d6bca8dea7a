// Package console serves the operator console at /console/: server-rendered
// pages (html/template, a little hand-written JS and CSS, all embedded)
// over the store's read side and the API's write side.
//
// Reads go straight to narrow store interfaces (Store below), so pages are
// cheap and can show what the API does not (failure runs, the activity
// rollup). Every change goes through the API handler in process, as the
// signed-in key, so the console can never do what that key could not do
// with curl, and validation, secrets and rotation rules live in one place.
//
// Security: a session is server-side (the cookie holds a random id only;
// HttpOnly, SameSite=Strict, Secure under TLS or an https --public-url); the key is looked up again
// on every request, so revoking it ends its sessions (and a live stream
// looks its session, key and webhook up again every Deps.StreamRecheck,
// streams.go); every POST carries a
// per-session CSRF token and a same-origin Origin (or Referer); the CSP
// allows no inline script or style; templates escape everything and never
// mark store data safe.
package console

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/publish"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the console is mounted.
const Prefix = "/console/"

// Store is what the console reads.
type Store interface {
	LookupAPIKey(ctx context.Context, digest []byte) (core.APIKey, error)
	ListAPIKeys(ctx context.Context, projectID string) ([]core.APIKey, error)
	GetProject(ctx context.Context, id string) (core.Project, error)
	ListProjects(ctx context.Context) ([]core.Project, error)
	GetWebhook(ctx context.Context, projectID, id string) (*core.Webhook, error)
	ListWebhooks(ctx context.Context, p core.ListWebhooksParams) ([]*core.Webhook, error)
	GetEvent(ctx context.Context, projectID, id string) (*core.Event, error)
	ListEvents(ctx context.Context, p core.ListEventsParams) ([]*core.Event, error)
	EventsByKeys(ctx context.Context, projectID string, keys []string) ([]*core.Event, error)
	GetDelivery(ctx context.Context, projectID, id string) (*core.Delivery, []core.Attempt, error)
	ListDeliveries(ctx context.Context, p core.ListDeliveriesParams) ([]*core.Delivery, error)
	QueueDepth(ctx context.Context, now time.Time) (core.QueueDepth, error)
	SigningKeys(ctx context.Context) ([]core.SigningKey, error)
	core.StatsStore
}

// Jobs is what the console reads of long-running jobs (optional).
type Jobs interface {
	GetJob(ctx context.Context, projectID, id string) (*core.Job, error)
	ListJobs(ctx context.Context, p core.ListJobsParams) ([]*core.Job, error)
}

// Publisher sends test events to one webhook.
type Publisher interface {
	Publish(ctx context.Context, projectID string, in []publish.Input) ([]publish.Result, error)
}

// Deps are the console's dependencies.
type Deps struct {
	// API is the API handler: every change is a request to it (required).
	API http.Handler
	// Store is the read side (required).
	Store Store
	// Publisher sends test events (required).
	Publisher Publisher
	// Catalog lists the event types a test event may have (required).
	Catalog *core.Catalog
	// Jobs, when set, shows the Jobs page.
	Jobs Jobs
	// RotateJWKS, when set, rotates the dynamic-webhook signing key.
	RotateJWKS func(ctx context.Context) error
	// Clock stamps sessions and windows. Default: core.SystemClock.
	Clock core.Clock
	// Logger receives internal errors (never keys or bodies). Default:
	// discard.
	Logger *slog.Logger
	// SessionTTL is how long a session lasts without use. Default: 12 h.
	SessionTTL time.Duration
	// SessionMaxAge is how long a session lasts however it is used: a
	// tab kept in use does not keep a key signed in for ever (a stolen
	// cookie ends with it). Default: 24 h.
	SessionMaxAge time.Duration
	// StreamRecheck is how often an open live stream looks its session,
	// the session's API key (in the store) and its webhook up again; it
	// ends when any is gone. Default: 2 s.
	StreamRecheck time.Duration
	// MaxStreamsPerSession caps the live streams one session holds open
	// at once; one more is refused with 429. Default: 8.
	MaxStreamsPerSession int
	// MaxSessionsPerKey caps the sessions one API key holds at once:
	// signing in once more ends the key's least recently used session.
	// Sessions live in memory, so without a cap any key holder could
	// grow the table (and with it every sign-in's sweep) without bound,
	// and open MaxStreamsPerSession streams in each. Default: 16.
	MaxSessionsPerKey int
	// PublicURL is serve's --public-url: a form whose Origin is its
	// origin is same-site even when a reverse proxy rewrote the Host
	// header (nginx's default proxy_pass sends the upstream's).
	PublicURL string
}

func (d Deps) withDefaults() Deps {
	if d.Clock == nil {
		d.Clock = core.SystemClock{}
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.SessionTTL <= 0 {
		d.SessionTTL = 12 * time.Hour
	}
	if d.SessionMaxAge <= 0 {
		d.SessionMaxAge = 24 * time.Hour
	}
	if d.StreamRecheck <= 0 {
		d.StreamRecheck = 2 * time.Second
	}
	if d.MaxStreamsPerSession <= 0 {
		d.MaxStreamsPerSession = 8
	}
	if d.MaxSessionsPerKey <= 0 {
		d.MaxSessionsPerKey = 16
	}
	return d
}

func (d Deps) validate() error {
	var errs []error
	if d.API == nil {
		errs = append(errs, errors.New("console: Deps.API is required"))
	}
	if d.Store == nil {
		errs = append(errs, errors.New("console: Deps.Store is required"))
	}
	if d.Publisher == nil {
		errs = append(errs, errors.New("console: Deps.Publisher is required"))
	}
	if d.Catalog == nil {
		errs = append(errs, errors.New("console: Deps.Catalog is required"))
	}
	return errors.Join(errs...)
}

// Console is the console's http.Handler.
type Console struct {
	d        Deps
	mux      *http.ServeMux
	sessions *sessions
	pages    *pages
	streams  *streamGate
	stop     chan struct{} // closed by Close: live streams end
	once     sync.Once
}

// Close ends the live streams (call it when the HTTP server shuts down, so
// open consoles do not hold the shutdown up). Safe to call twice.
func (c *Console) Close() { c.once.Do(func() { close(c.stop) }) }

// New returns the console handler, to be mounted at Prefix. It panics on a
// missing dependency (a wiring bug).
func New(d Deps) *Console {
	if err := d.validate(); err != nil {
		panic(err)
	}
	d = d.withDefaults()
	c := &Console{d: d, mux: http.NewServeMux(), sessions: newSessions(d.SessionTTL, d.SessionMaxAge, d.MaxSessionsPerKey), pages: mustParsePages(),
		streams: &streamGate{max: d.MaxStreamsPerSession, open: map[string]int{}}, stop: make(chan struct{})}
	c.routes()
	return c
}

// ServeHTTP sets the security headers every response carries, then
// dispatches.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	c.mux.ServeHTTP(w, r)
}

func (c *Console) routes() {
	static, _ := fs.Sub(staticFS, "static")
	c.mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", staticHandler(static)))
	c.mux.HandleFunc("GET /console/signin", c.signinPage)
	c.mux.HandleFunc("POST /console/signin", c.signin)
	c.mux.Handle("POST /console/signout", c.post(c.signout))
	c.mux.Handle("POST /console/project", c.post(c.switchProject))

	c.mux.Handle("GET /console/{$}", c.page(c.overview))
	c.mux.Handle("GET /console/webhooks", c.page(c.webhooks))
	c.mux.Handle("POST /console/webhooks", c.post(c.createWebhook))
	c.mux.Handle("GET /console/webhooks/{id}", c.page(c.webhook))
	c.mux.Handle("GET /console/webhooks/{id}/stream", c.authed(c.stream))
	c.mux.Handle("GET /console/webhooks/{id}/created", c.page(c.created))
	c.mux.Handle("POST /console/webhooks/{id}/{action}", c.post(c.webhookAction))
	c.mux.Handle("GET /console/deliveries/{id}", c.page(c.delivery))
	c.mux.Handle("POST /console/deliveries/{id}/redeliver", c.post(c.redeliver))
	c.mux.Handle("GET /console/events", c.page(c.events))
	c.mux.Handle("GET /console/jobs", c.page(c.jobs))
	c.mux.Handle("GET /console/jobs/{id}", c.page(c.job))
	c.mux.Handle("GET /console/admin", c.page(c.admin))
	c.mux.Handle("POST /console/admin/{action}", c.post(c.adminAction))
	c.mux.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		c.render(w, r, nil, http.StatusNotFound, "error", errorView{Title: "Not found", Message: "There is no console page at this address."})
	})
}

// staticHandler serves the embedded assets with a short cache lifetime.
func staticHandler(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		files.ServeHTTP(w, r)
	})
}

// Assets serves the console's embedded CSS and script (the gateway's
// console uses them too).
func Assets() http.Handler {
	static, _ := fs.Sub(staticFS, "static")
	return staticHandler(static)
}
