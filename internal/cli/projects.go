package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/core"
)

// storeFlags are the flags every offline admin command shares.
func storeFlags(fs *flagSet) (dataDir, dbURL *string) {
	dataDir = fs.String("data-dir", "./longhook-data", "data directory")
	dbURL = fs.String("database-url", "", "database URL (default sqlite in the data dir)")
	return
}

// The verbs of projects and keys, which work on the data dir or database
// directly (no server).
var (
	projectVerbs = []subcommand{
		{name: "create", summary: "create a project and its first API key: create NAME"},
		{name: "list", summary: "list the projects"},
	}
	keyVerbs = []subcommand{
		{name: "create", summary: "create an API key: create [--project ID] [--name N] [--admin]"},
		{name: "list", summary: "list API keys (hints only): list [--project ID]"},
		{name: "revoke", summary: "revoke an API key: revoke KEY_ID"},
	}
)

func runProjects(ctx context.Context, args []string, env Env) error {
	if err := checkVerb("projects", projectVerbs, false, args, env); err != nil {
		return err
	}
	env = withVerb(env, projectVerbs, args[0])
	fs := newFlagSet("projects "+args[0], env)
	dataDir, dbURL := storeFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON for scripts (the API's shape: POST and GET /v1/projects)")
	var pos []string
	var err error
	if args[0] == "create" {
		pos, err = parseArgs(fs, args[1:], 1, 1, "one argument: NAME")
		if err == nil && strings.TrimSpace(pos[0]) == "" {
			err = fmt.Errorf("%w: projects create: NAME must not be empty", errUsage)
		}
	} else {
		_, err = parseArgs(fs, args[1:], 0, 0, "no arguments")
	}
	if err != nil {
		return err
	}
	// A first run vs a typo: list reads, so a missing database is refused
	// (a mistyped --data-dir must not get an empty one listed as if it
	// were yours); create may provision before serve's first start, so it
	// makes the database, and says where, so that a typo shows.
	missing := needDatabase(*dbURL, *dataDir)
	if missing != nil && args[0] != "create" {
		return missing
	}
	store, err := openStore(ctx, *dbURL, *dataDir, false, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	if missing != nil {
		fmt.Fprintf(env.Stderr, "longhook: created a new database at %s (no database was there: if you meant an existing one, check --data-dir or --database-url)\n", sqlitePath(*dbURL, *dataDir))
	}
	switch args[0] {
	case "create":
		now := time.Now().UTC()
		p := core.Project{ID: core.NewID(), Name: pos[0], CreateTime: now}
		if err := store.CreateProject(ctx, p); err != nil {
			return err
		}
		key, digest, hint := api.NewAPIKey()
		keyID := core.NewID()
		if err := store.CreateAPIKey(ctx, core.APIKey{ID: keyID, ProjectID: p.ID, Name: "default", Digest: digest, Hint: hint, CreateTime: now}); err != nil {
			return err
		}
		if *asJSON {
			k := core.APIKey{ID: keyID, ProjectID: p.ID, Name: "default", Hint: hint, CreateTime: now}
			out := api.ProjectOut(p)
			out.APIKey = keyJSON(k, key)
			return printJSON(env.Stdout, out)
		}
		fmt.Fprintf(env.Stdout, "project %s (%s)\nAPI key (shown once): %s\n", p.Name, p.ID, key)
		return nil
	case "list":
		ps, err := store.ListProjects(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			out := struct {
				Projects []*api.ProjectResource `json:"projects"`
			}{Projects: []*api.ProjectResource{}}
			for _, p := range ps {
				out.Projects = append(out.Projects, api.ProjectOut(p))
			}
			return printJSON(env.Stdout, out)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED")
		for _, p := range ps {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", p.ID, p.Name, p.CreateTime.Format(time.RFC3339))
		}
		return tw.Flush()
	default:
		return fmt.Errorf("%w: unknown projects command %q (create, list)", errUsage, args[0])
	}
}

func runKeys(ctx context.Context, args []string, env Env) error {
	if err := checkVerb("keys", keyVerbs, false, args, env); err != nil {
		return err
	}
	env = withVerb(env, keyVerbs, args[0])
	fs := newFlagSet("keys "+args[0], env)
	dataDir, dbURL := storeFlags(fs)
	// Each verb declares only the flags it reads: a shared set let
	// `keys list --admin` (which lists every key) and `keys revoke ID
	// --name x` pass silently, and every -h offered flags its verb ignored.
	project, name, admin, asJSON := new(string), new(string), new(bool), new(bool)
	if args[0] != "revoke" {
		project = fs.String("project", "", "project id (default: the default project)")
		asJSON = fs.Bool("json", false, "print JSON for scripts (the API's shape: POST and GET /v1/projects/{id}/keys)")
	}
	if args[0] == "create" {
		name = fs.String("name", "", "key name")
		admin = fs.Bool("admin", false, "the key may also manage projects and keys")
	}
	want, names := 0, "no arguments"
	if args[0] == "revoke" {
		want, names = 1, "one argument: KEY_ID"
	}
	pos, err := parseArgs(fs, args[1:], want, want, names)
	if err != nil {
		return err
	}
	// Every keys verb needs a project, so a missing database is a typo.
	if err := needDatabase(*dbURL, *dataDir); err != nil {
		return err
	}
	store, err := openStore(ctx, *dbURL, *dataDir, false, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	switch args[0] {
	case "create":
		return keysCreate(ctx, store, env, *project, *name, *admin, *asJSON)
	case "list":
		return keysList(ctx, store, env, *project, *asJSON)
	case "revoke":
		return keysRevoke(ctx, store, env, pos[0])
	default:
		return fmt.Errorf("%w: unknown keys command %q (create, list, revoke)", errUsage, args[0])
	}
}

// resolveProject is the id of the --project given, which has to exist,
// or else of the default project.
func resolveProject(ctx context.Context, store core.Store, project string) (string, error) {
	if project != "" {
		_, err := store.GetProject(ctx, project)
		if errors.Is(err, core.ErrNotFound) {
			return "", fmt.Errorf("%w: --project: no project %q (longhook projects list shows them)", errUsage, project)
		}
		return project, err
	}
	ps, err := store.ListProjects(ctx)
	if err != nil {
		return "", err
	}
	for _, p := range ps {
		if p.Name == "default" {
			return p.ID, nil
		}
	}
	return "", fmt.Errorf("%w: no default project; pass --project", errUsage)
}

// keysCreate is `keys create`.
func keysCreate(ctx context.Context, store core.Store, env Env, project, name string, admin, asJSON bool) error {
	pid, err := resolveProject(ctx, store, project)
	if err != nil {
		return err
	}
	key, digest, hint := api.NewAPIKey()
	k := core.APIKey{ID: core.NewID(), ProjectID: pid, Name: name, Digest: digest, Hint: hint, Admin: admin, CreateTime: time.Now().UTC()}
	if err := store.CreateAPIKey(ctx, k); err != nil {
		return err
	}
	if asJSON {
		return printJSON(env.Stdout, keyJSON(k, key))
	}
	fmt.Fprintf(env.Stdout, "key %s for project %s\nAPI key (shown once): %s\n", k.ID, pid, key)
	return nil
}

// keysList is `keys list`.
func keysList(ctx context.Context, store core.Store, env Env, project string, asJSON bool) error {
	if project != "" {
		if _, err := resolveProject(ctx, store, project); err != nil {
			return err // an unknown --project, not an empty list
		}
	}
	keys, err := store.ListAPIKeys(ctx, project)
	if err != nil {
		return err
	}
	if asJSON {
		out := struct {
			Keys []*api.APIKeyResource `json:"keys"`
		}{Keys: []*api.APIKeyResource{}}
		for _, k := range keys {
			out.Keys = append(out.Keys, keyJSON(k, ""))
		}
		return printJSON(env.Stdout, out)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPROJECT\tNAME\tKEY\tADMIN\tCREATED\tREVOKED")
	for _, k := range keys {
		revoked := ""
		if !k.RevokeTime.IsZero() {
			revoked = k.RevokeTime.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t…%s\t%v\t%s\t%s\n", k.ID, k.ProjectID, k.Name, k.Hint, k.Admin, k.CreateTime.Format(time.RFC3339), revoked)
	}
	return tw.Flush()
}

// keysRevoke is `keys revoke KEY_ID`.
func keysRevoke(ctx context.Context, store core.Store, env Env, id string) error {
	err := store.RevokeAPIKey(ctx, id, time.Now().UTC())
	if errors.Is(err, core.ErrNotFound) {
		return fmt.Errorf("no API key %q (longhook keys list shows their ids)", id)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "revoked %s\n", id)
	return nil
}

// keyJSON is what --json prints for k: the API's shape (api.KeyOut, as
// projects print api.ProjectOut's), so a script reads the same members
// whether it provisions over the API or on the data dir; secret, the key
// itself, only when it was just made.
func keyJSON(k core.APIKey, secret string) *api.APIKeyResource {
	j := api.KeyOut(k)
	j.Key = secret
	return j
}
