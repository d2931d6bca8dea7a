package api

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// projectStore is what the admin handlers need of the store.
type projectStore interface {
	CreateProject(ctx context.Context, p core.Project) error
	GetProject(ctx context.Context, id string) (core.Project, error)
	ListProjects(ctx context.Context) ([]core.Project, error)
	CreateAPIKey(ctx context.Context, k core.APIKey) error
	ListAPIKeys(ctx context.Context, projectID string) ([]core.APIKey, error)
	RevokeAPIKey(ctx context.Context, id string, at time.Time) error
}

// Admin routes manage projects and API keys; admin() in routes.go has
// already checked that the caller holds an admin key.

// ProjectResource is a project on the wire (docs/openapi.json Project);
// the CLI's --json prints the same shape for what it makes on the data dir.
type ProjectResource struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	CreateTime string          `json:"create_time"`
	APIKey     *APIKeyResource `json:"api_key,omitempty"`
}

// APIKeyResource is an API key on the wire (docs/openapi.json APIKey).
// Key (the plaintext) is set only in the response that creates it.
type APIKeyResource struct {
	ID         string `json:"id"`
	ProjectID  string `json:"project_id"`
	Name       string `json:"name,omitempty"`
	Key        string `json:"key,omitempty"`
	Hint       string `json:"hint"`
	Admin      bool   `json:"admin,omitempty"`
	CreateTime string `json:"create_time"`
	RevokeTime string `json:"revoke_time,omitempty"`
}

const maxProjectNameLength = 256

type createProjectRequest struct {
	Name string `json:"name"`
}

func (s *server) createProject(r *http.Request, _ core.APIKey) (any, error) {
	var req createProjectRequest
	if err := DecodeJSON(r, &req); err != nil {
		return nil, err
	}
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" {
		return nil, core.Invalid("name", "name is required")
	}
	if len(req.Name) > maxProjectNameLength {
		return nil, core.Invalid("name", "name is longer than %d characters", maxProjectNameLength)
	}
	now := s.d.Clock.Now().UTC()
	p := core.Project{ID: core.NewID(), Name: req.Name, CreateTime: now}
	if err := s.projects.CreateProject(r.Context(), p); err != nil {
		return nil, err
	}
	k, err := s.issueKey(r, p.ID, "default")
	if err != nil {
		return nil, err
	}
	out := ProjectOut(p)
	out.APIKey = k
	return out, nil
}

// ProjectOut renders p, without a key.
func ProjectOut(p core.Project) *ProjectResource {
	return &ProjectResource{ID: p.ID, Name: p.Name, CreateTime: resourceTime(p.CreateTime)}
}

// issueKey creates a (non-admin) key for a project and returns it with its
// plaintext, which is never shown again.
func (s *server) issueKey(r *http.Request, projectID, name string) (*APIKeyResource, error) {
	plaintext, digest, hint := NewAPIKey()
	k := core.APIKey{
		ID:         core.NewID(),
		ProjectID:  projectID,
		Name:       name,
		Digest:     digest,
		Hint:       hint,
		CreateTime: s.d.Clock.Now().UTC(),
	}
	if err := s.projects.CreateAPIKey(r.Context(), k); err != nil {
		return nil, err
	}
	out := KeyOut(k)
	out.Key = plaintext
	return out, nil
}

// KeyOut renders k, without its plaintext.
func KeyOut(k core.APIKey) *APIKeyResource {
	return &APIKeyResource{
		ID:         k.ID,
		ProjectID:  k.ProjectID,
		Name:       k.Name,
		Hint:       k.Hint,
		Admin:      k.Admin,
		CreateTime: resourceTime(k.CreateTime),
		RevokeTime: resourceTime(k.RevokeTime),
	}
}

type listProjectsResponse struct {
	Projects []*ProjectResource `json:"projects,omitempty"`
}

func (s *server) listProjects(r *http.Request, _ core.APIKey) (any, error) {
	ps, err := s.projects.ListProjects(r.Context())
	if err != nil {
		return nil, err
	}
	var resp listProjectsResponse
	for _, p := range ps {
		resp.Projects = append(resp.Projects, ProjectOut(p))
	}
	return &resp, nil
}

type createKeyRequest struct {
	Name string `json:"name"`
}

func (s *server) createKey(r *http.Request, _ core.APIKey) (any, error) {
	var req createKeyRequest
	if err := DecodeJSON(r, &req); err != nil {
		return nil, err
	}
	if len(req.Name) > maxProjectNameLength {
		return nil, core.Invalid("name", "name is longer than %d characters", maxProjectNameLength)
	}
	id := r.PathValue("id")
	if _, err := s.projects.GetProject(r.Context(), id); err != nil {
		return nil, notFoundAs(err, "project", id)
	}
	return s.issueKey(r, id, req.Name)
}

type listKeysResponse struct {
	Keys []*APIKeyResource `json:"keys,omitempty"`
}

func (s *server) listKeys(r *http.Request, _ core.APIKey) (any, error) {
	id := r.PathValue("id")
	if _, err := s.projects.GetProject(r.Context(), id); err != nil {
		return nil, notFoundAs(err, "project", id)
	}
	ks, err := s.projects.ListAPIKeys(r.Context(), id)
	if err != nil {
		return nil, err
	}
	var resp listKeysResponse
	for _, k := range ks {
		resp.Keys = append(resp.Keys, KeyOut(k))
	}
	return &resp, nil
}

func (s *server) revokeKey(r *http.Request, _ core.APIKey) (any, error) {
	var req struct{}
	if err := DecodeJSON(r, &req); err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	if err := s.projects.RevokeAPIKey(r.Context(), id, s.d.Clock.Now().UTC()); err != nil {
		return nil, notFoundAs(err, "API key", id)
	}
	// The cache is keyed by digest, which the id does not give us: forget
	// everything so the revocation holds here at once.
	s.keys.purge()
	return nil, nil
}
