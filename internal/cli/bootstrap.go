package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/core"
)

// bootstrap creates the default project and its API key on first start,
// and repairs a default project left without any key. Instances starting
// together on one PostgreSQL database take a lease for either, so exactly
// one of them creates anything: another that sees the project before its
// key exists waits for the lease instead of creating a second key.
func (s *Server) bootstrap(ctx context.Context) error {
	owner := core.NewID()
	deadline := time.Now().Add(30 * time.Second)
	waiting := false
	for {
		done, err := s.bootstrapped(ctx)
		if err != nil || done {
			if done {
				s.checkBootstrapKey(ctx)
			}
			return err
		}
		ok, err := s.store.AcquireLease(ctx, "bootstrap", owner, time.Now().UTC(), 30*time.Second)
		if err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
		if ok {
			defer s.store.ReleaseLease(context.WithoutCancel(ctx), "bootstrap", owner)
			if done, err := s.bootstrapped(ctx); err != nil || done {
				return err // another instance finished first
			}
			if s.ProjectID == "" {
				return s.createDefaultProject(ctx)
			}
			return s.repairBootstrap(ctx)
		}
		if !waiting {
			waiting = true
			s.log.Info("bootstrap.wait: another instance is bootstrapping; waiting for it")
		}
		if time.Now().After(deadline) {
			return errors.New("bootstrap: another instance holds the bootstrap lease")
		}
		if !core.Sleep(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// checkBootstrapKey warns when LONGHOOK_BOOTSTRAP_API_KEY is set on a
// start that had nothing to bootstrap and the key is not a live key of the
// store: it is read only on first start, so an operator who set it later
// (or revoked it) would otherwise get 401s with nothing in the log saying
// why. The key itself is never logged.
func (s *Server) checkBootstrapKey(ctx context.Context) {
	key := s.env.Getenv("LONGHOOK_BOOTSTRAP_API_KEY")
	if key == "" {
		return
	}
	_, err := s.store.LookupAPIKey(ctx, api.KeyDigest(key))
	switch {
	case err == nil:
	case errors.Is(err, core.ErrNotFound):
		s.log.Warn("bootstrap.key_ignored: LONGHOOK_BOOTSTRAP_API_KEY is set but is not an API key of this store " +
			"(it is read only on the first start, and this store already has keys, or the key was revoked); " +
			"create one with `longhook keys create` instead")
	default:
		s.log.Warn("bootstrap.key_check", "error", err)
	}
}

// bootstrapped reports whether nothing is left to bootstrap: no project
// at all (false), or some project and some API key (true). It sets
// s.ProjectID to the default project when there is one.
func (s *Server) bootstrapped(ctx context.Context) (bool, error) {
	projects, err := s.store.ListProjects(ctx)
	if err != nil || len(projects) == 0 {
		return false, err
	}
	for _, p := range projects {
		if p.Name == "default" {
			s.ProjectID = p.ID
		}
	}
	if s.ProjectID == "" {
		return true, nil // projects, but none is the default: nothing to repair
	}
	keys, err := s.store.ListAPIKeys(ctx, "")
	return len(keys) > 0, err
}

// minBootstrapKey is the shortest LONGHOOK_BOOTSTRAP_API_KEY accepted.
const minBootstrapKey = 32

// repairBootstrap gives the default project its admin key when no project
// has any key at all (not even a revoked one): a start that created the
// project but failed before its key (an older version validated the key
// too late) would otherwise leave every call answering 401. It runs under
// the bootstrap lease.
func (s *Server) repairBootstrap(ctx context.Context) error {
	p, err := s.store.GetProject(ctx, s.ProjectID)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	s.log.Warn("bootstrap.repair: the default project has no API key; creating it")
	return s.createBootstrapKey(ctx, p)
}

func (s *Server) createDefaultProject(ctx context.Context) error {
	p := core.Project{ID: core.NewID(), Name: "default", CreateTime: time.Now().UTC()}
	if err := s.store.CreateProject(ctx, p); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	return s.createBootstrapKey(ctx, p)
}

// createBootstrapKey creates p's admin key (LONGHOOK_BOOTSTRAP_API_KEY, or
// a random one), saves it to DATA_DIR/api-key and prints it once.
func (s *Server) createBootstrapKey(ctx context.Context, p core.Project) error {
	now := time.Now().UTC()
	key := s.env.Getenv("LONGHOOK_BOOTSTRAP_API_KEY")
	var digest []byte
	var hint string
	if key == "" {
		key, digest, hint = api.NewAPIKey()
	} else {
		digest, hint = api.KeyDigest(key), key[len(key)-4:]
	}
	k := core.APIKey{ID: core.NewID(), ProjectID: p.ID, Name: "bootstrap", Digest: digest, Hint: hint, Admin: true, CreateTime: now}
	if err := s.store.CreateAPIKey(ctx, k); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	path := filepath.Join(s.cfg.DataDir, "api-key")
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	s.ProjectID, s.APIKey = p.ID, key
	fmt.Fprintf(s.env.Stdout, "Project %q (%s).\nAPI key (shown once, also saved to %s):\n\n    %s\n\n", p.Name, p.ID, path, key)
	return nil
}
