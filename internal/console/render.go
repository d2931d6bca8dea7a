package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// pages are the parsed templates: each page is the layout plus its file.
type pages struct {
	m map[string]*template.Template
}

var pageNames = []string{"signin", "error", "overview", "webhooks", "webhook", "created", "delivery", "events", "jobs", "job", "admin"}

func mustParsePages() *pages {
	base := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	p := &pages{m: map[string]*template.Template{}}
	for _, n := range pageNames {
		t := template.Must(template.Must(base.Clone()).ParseFS(templateFS, "templates/"+n+".html"))
		p.m[n] = t
	}
	return p
}

// frame is what the layout needs besides the page's own data.
type frame struct {
	Title   string
	Nav     string
	Session *session
	Admin   bool
	Project string
	// ProjectName names Project for a project key (an admin key has
	// Projects, the switch).
	ProjectName string
	Projects    []core.Project
	CSRF        string
	Flash       string
	Page        any
}

// plotArgs is the argument of the "plot" template.
type plotArgs struct {
	Title string
	P     plot
}

// errorView is the error page.
type errorView struct {
	Title   string
	Message string
	// Back and BackLabel link to where the operator came from (backFrom
	// fills them in by default).
	Back, BackLabel string
}

// backFrom is where an error page's link leads: the page whose form was
// refused (a webhook's, a delivery's, Admin), else the list the page
// belongs to. The error page linked to the overview only: a mistyped
// delete confirmation or a refused edit left the operator with no way
// back to the webhook but the browser's.
func backFrom(r *http.Request) (href, label string) {
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/console/"), "/"), "/")
	if r.Method == http.MethodPost {
		switch {
		case len(parts) == 3 && parts[0] == "webhooks":
			return "/console/webhooks/" + url.PathEscape(parts[1]), "← Back to the webhook"
		case len(parts) == 3 && parts[0] == "deliveries":
			return "/console/deliveries/" + url.PathEscape(parts[1]), "← Back to the delivery"
		case parts[0] == "admin":
			return "/console/admin", "← Back to Admin"
		}
	}
	switch parts[0] {
	case "webhooks", "deliveries":
		return "/console/webhooks", "← Webhooks"
	case "events":
		return "/console/events", "← Events"
	case "jobs":
		return "/console/jobs", "← Jobs"
	}
	return "/console/", "← Overview"
}

type signinView struct {
	Next   string
	Error  string
	Notice string
}

// render writes a page. Templates render into a buffer first, so a
// failure mid-page becomes a clean 500 instead of half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, s *session, status int, name string, data any) {
	if ev, ok := data.(errorView); ok && ev.Back == "" {
		ev.Back, ev.BackLabel = backFrom(r)
		data = ev
	}
	f := frame{Page: data, Nav: name}
	if s != nil {
		f.Flash = s.flash(r.URL.Query())
		f.Session, f.CSRF, f.Project, f.Admin = s, s.csrf, s.project, s.admin
		if s.admin {
			if ps, err := c.d.Store.ListProjects(r.Context()); err == nil {
				f.Projects = ps
			}
		} else if p, err := c.d.Store.GetProject(r.Context(), s.project); err == nil {
			f.ProjectName = p.Name
		}
	}
	var buf bytes.Buffer
	if err := c.pages.m[name].ExecuteTemplate(&buf, "layout.html", f); err != nil {
		c.d.Logger.Error("console.render", "page", name, "err", err)
		http.Error(w, "The page could not be rendered.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail renders an error: API and store errors in words, anything else as
// a 500 with the details in the log only.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		// The console's own checks end here too, so the title names no
		// one: it says what became of the request.
		title := "Not done"
		if r.Method == http.MethodGet {
			title = "This page cannot be shown"
		}
		c.render(w, r, s, ae.Status, "error", errorView{Title: title, Message: ae.Message})
	case errors.Is(err, core.ErrNotFound):
		c.render(w, r, s, http.StatusNotFound, "error", errorView{Title: "Not found",
			Message: "Nothing with that id exists in this project."})
	default:
		c.d.Logger.Error("console.error", "path", r.URL.Path, "err", err)
		c.render(w, r, s, http.StatusInternalServerError, "error", errorView{Title: "Something went wrong",
			Message: "The console could not read the store. The server log has the details."})
	}
}

var funcs = template.FuncMap{
	"when":      when,
	"ago":       ago,
	"ms":        ms,
	"pct":       pct,
	"pretty":    prettyJSON,
	"statusCls": statusClass,
	"stateCls":  stateClass,
	"join":      strings.Join,
	"explain":   explainAttempt,
	"lastError": lastError,
	"add":       func(a, b int) int { return a + b },
	"list":      func(xs ...window) []window { return xs },
	"int":       func(x int64) int { return int(x) },
	"int64":     func(x int) int64 { return int64(x) },
	"plural":    plural,
	"jobCls":    jobClass,
	"jobState":  jobState,
	"fmtInput":  func(t time.Time) string { return t.UTC().Format(timeInput) },
	"plotArgs":  func(title string, p plot) plotArgs { return plotArgs{Title: title, P: p} },
}

// when formats a time for tables: UTC, to the second.
func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

// ago says how long before now t was, roughly.
func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%dh", int(d.Hours()))
	default:
		s = fmt.Sprintf("%dd", int(d.Hours()/24))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

func ms(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	case d < 10*time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// pct formats a rate in [0, 1]; negative means no data.
func pct(f float64) string {
	if f < 0 {
		return "—"
	}
	if f >= 0.9995 && f < 1 {
		return "99.9%"
	}
	return fmt.Sprintf("%.1f%%", f*100)
}

// prettyJSON indents a JSON document for display (escaped by the
// template like any other text); anything else is shown as is.
func prettyJSON(b []byte) string {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return string(b)
	}
	// Go's encoder writes <, > and & as \u escapes; show the characters
	// (the template escapes them for HTML like any text).
	return htmlUnescaper.Replace(out.String())
}

var htmlUnescaper = strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&")

func statusClass(s core.DeliveryStatus) string {
	switch s {
	case core.DeliverySucceeded:
		return "ok"
	case core.DeliveryFailed:
		return "bad"
	case core.DeliveryPending:
		return "warn"
	}
	return "muted"
}

func stateClass(s core.WebhookState) string {
	switch s {
	case core.WebhookEnabled:
		return "ok"
	case core.WebhookDisabledDueToFailedDeliveries:
		return "bad"
	}
	return "muted"
}

// lastError is a delivery's last error as a table shows it: an HTTP
// status's error ("http_status: HTTP 500") as the status ("HTTP 500"),
// the engine's class prefix being no word for an operator; other errors
// as they are ("connection: …" says what failed).
func lastError(e string) string {
	if rest, ok := strings.CutPrefix(e, "http_status: "); ok {
		return rest
	}
	return e
}

// explainAttempt says in words why an attempt failed and what to do.
func explainAttempt(a core.Attempt) string {
	code, e := a.StatusCode, a.Error
	switch {
	case e == "" && code >= 200 && code < 300:
		return "Delivered: the receiver answered " + fmt.Sprint(code) + "."
	case code == 410:
		return "The receiver answered 410 Gone: longhook disabled this webhook. Fix or replace the endpoint, then enable the webhook."
	case code == 401 || code == 403:
		return fmt.Sprintf("The receiver refused the request (%d). It may check the signature with an old secret: compare its secret with this webhook's, or rotate and update both.", code)
	case code == 429:
		return "The receiver is rate limiting (429). longhook backs off and honours Retry-After; lower the event rate or raise the receiver's limit."
	case code == 503:
		return "The receiver is unavailable (503). longhook retries on its schedule; check that the service is up."
	case code >= 500:
		return fmt.Sprintf("The receiver failed with HTTP %d: its own code raised an error. Look in the receiver's logs for this webhook-id, fix it, then redeliver.", code)
	case code >= 400:
		return fmt.Sprintf("The receiver rejected the request with HTTP %d. Check the endpoint's path and what it expects.", code)
	case code >= 300:
		return fmt.Sprintf("The receiver redirected (%d); longhook never follows redirects. Point the webhook at the final URL.", code)
	case strings.HasPrefix(e, "timeout"):
		return "No answer in time. The receiver should answer quickly (2xx) and do slow work afterwards."
	case strings.HasPrefix(e, "blocked"):
		return "The address resolves to a private or local network, which longhook refuses to call. Use a public address."
	case strings.HasPrefix(e, "connection"):
		return "longhook could not connect (" + e + "). Check that the host is up and reachable from this server."
	case strings.HasPrefix(e, "dns:"):
		return "The host name could not be resolved (" + e + "). Check the host name in the webhook's URL, and that this server's DNS can resolve it."
	case strings.HasPrefix(e, "tls:"):
		return "The TLS handshake failed (" + e + "): the receiver's certificate is expired, not for this host name, or not from a CA this server trusts. Check the receiver's certificate and that it serves the whole chain."
	case strings.HasPrefix(e, "invalid"):
		return "The destination cannot be used: " + strings.TrimPrefix(e, "invalid: ")
	case e != "":
		return strings.TrimSuffix(e, ".") + "."
	}
	return ""
}

// jobState is a job's state as the API shows its resource (BATCH_STATE_*,
// an interaction's status); a video operation has only done or not, so a
// finished one also says how it ended.
func jobState(j *core.Job) string {
	if j.Kind == core.JobVideo && j.State.Terminal() {
		return "done · " + string(j.State)
	}
	return j.State.Public(j.Kind)
}

func jobClass(s core.JobState) string {
	switch s {
	case core.JobSucceeded:
		return "ok"
	case core.JobFailed, core.JobExpired:
		return "bad"
	case core.JobRunning, core.JobPending, core.JobRequiresAction:
		return "warn"
	}
	return "muted"
}

// plural says "1 attempt" or "3 attempts".
func plural(n int64, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
