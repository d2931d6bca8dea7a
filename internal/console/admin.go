package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/longhook/longhook/internal/core"
)

type adminView struct {
	Keys       []core.APIKey
	Projects   map[string]string
	Signing    []core.SigningKey
	CanRotate  bool
	NewKey     string
	NewKeyNote string
	// Mine is the id of the key this session signed in with.
	Mine string
}

// admin shows API keys (every project) and the JWKS signing keys. Admin
// keys only: a project key manages nothing here.
func (c *Console) admin(w http.ResponseWriter, r *http.Request, s *session) {
	var v adminReveal // the new key a form made, shown on this load only
	if tok := r.URL.Query().Get("r"); tok != "" {
		got, _ := c.sessions.take(r, s.id, tok, c.d.Clock.Now())
		v, _ = got.(adminReveal)
	}
	c.renderAdmin(w, r, s, v.Key, v.Note)
}

// adminReveal is a new API key waiting for the one Admin page that shows
// it (the form redirects there, so a reload creates no second key).
type adminReveal struct{ Key, Note string }

// showKeyOnce redirects to the Admin page that shows key once.
func (c *Console) showKeyOnce(w http.ResponseWriter, r *http.Request, s *session, key, note string) {
	tok := c.sessions.stash(s.id, adminReveal{Key: key, Note: note}, c.d.Clock.Now())
	http.Redirect(w, r, "/console/admin?r="+url.QueryEscape(tok), http.StatusSeeOther)
}

func (c *Console) renderAdmin(w http.ResponseWriter, r *http.Request, s *session, newKey, note string) {
	if !s.admin {
		c.render(w, r, s, http.StatusForbidden, "error", errorView{Title: "Admin only",
			Message: "API keys and signing keys are managed with an admin key. This key belongs to one project."})
		return
	}
	ctx := r.Context()
	keys, err := c.d.Store.ListAPIKeys(ctx, "")
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	ps, err := c.d.Store.ListProjects(ctx)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	sk, err := c.d.Store.SigningKeys(ctx)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	v := adminView{Keys: keys, Projects: map[string]string{}, Signing: sk, CanRotate: c.d.RotateJWKS != nil, NewKey: newKey, NewKeyNote: note, Mine: s.keyID}
	for _, p := range ps {
		v.Projects[p.ID] = p.Name
	}
	c.render(w, r, s, http.StatusOK, "admin", v)
}

// adminAction creates or revokes API keys through the API, or rotates the
// JWKS signing key.
func (c *Console) adminAction(w http.ResponseWriter, r *http.Request, s *session) {
	if !s.admin {
		c.render(w, r, s, http.StatusForbidden, "error", errorView{Title: "Admin only", Message: "This needs an admin key."})
		return
	}
	ctx := r.Context()
	switch r.PathValue("action") {
	case "keys":
		var out struct {
			Key string `json:"key"`
		}
		body := map[string]any{"name": strings.TrimSpace(r.PostForm.Get("name"))}
		if err := c.call(ctx, s, "POST", "/v1/projects/"+url.PathEscape(r.PostForm.Get("project"))+"/keys", body, &out); err != nil {
			c.fail(w, r, s, err)
			return
		}
		c.showKeyOnce(w, r, s, out.Key, "Copy the new API key now: it is shown only once.")
	case "project":
		var out struct {
			APIKey struct {
				Key string `json:"key"`
			} `json:"api_key"`
		}
		if err := c.call(ctx, s, "POST", "/v1/projects", map[string]any{"name": strings.TrimSpace(r.PostForm.Get("name"))}, &out); err != nil {
			c.fail(w, r, s, err)
			return
		}
		c.showKeyOnce(w, r, s, out.APIKey.Key, "Project created. Copy its first API key now: it is shown only once.")
	case "revoke":
		if err := c.call(ctx, s, "POST", "/v1/keys/"+url.PathEscape(r.PostForm.Get("key"))+":revoke", map[string]any{}, nil); err != nil {
			c.fail(w, r, s, err)
			return
		}
		if r.PostForm.Get("key") == s.keyID {
			// This session's own key: it has ended with it. Say so on
			// the sign-in page rather than land there without a word.
			c.sessions.drop(s.id)
			c.clearCookie(w, r)
			http.Redirect(w, r, "/console/signin?bye=revoked", http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, s.doneURL("/console/admin", "Key revoked: its console sessions have ended too."), http.StatusSeeOther)
	case "rotate-jwks":
		if c.d.RotateJWKS == nil {
			c.fail(w, r, s, &apiError{Status: http.StatusNotFound, Message: "Dynamic webhook signing is not configured on this server."})
			return
		}
		if err := c.d.RotateJWKS(ctx); err != nil {
			c.fail(w, r, s, err)
			return
		}
		http.Redirect(w, r, s.doneURL("/console/admin", "Signing key rotated: the previous key stays in the JWKS until it retires."), http.StatusSeeOther)
	default:
		c.fail(w, r, s, core.ErrNotFound)
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
