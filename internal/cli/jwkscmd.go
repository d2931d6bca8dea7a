package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/jwks"
	"github.com/longhook/longhook/internal/secretbox"
)

// jwksVerbs are the verbs of jwks, which works on the data dir or
// database directly (no server).
var jwksVerbs = []subcommand{
	{name: "rotate", summary: "make a new signing key and retire the current one (running servers pick it up)"},
	{name: "list", summary: "list the signing keys, current and retired"},
}

func runJWKS(ctx context.Context, args []string, env Env) error {
	if err := checkVerb("jwks", jwksVerbs, false, args, env); err != nil {
		return err
	}
	env = withVerb(env, jwksVerbs, args[0])
	fs := newFlagSet("jwks "+args[0], env)
	dataDir, dbURL := storeFlags(fs)
	// Each verb declares only the flags it reads (list took rotate's
	// --jwt-algorithm and ignored it).
	alg, ttl, margin, asJSON := new(string), new(time.Duration), new(time.Duration), new(bool)
	if args[0] == "rotate" {
		alg = fs.String("jwt-algorithm", "", "algorithm of the new key: RS256, ES256 or EdDSA (default: the current key's, RS256 for the first)")
		ttl = fs.Duration("jwt-ttl", 5*time.Minute, "token lifetime the server uses (the retired key stays published for it plus the margin)")
		margin = fs.Duration("jwks-retire-margin", 10*time.Minute, "extra time a retired key stays published")
	} else {
		asJSON = fs.Bool("json", false, "print JSON for scripts")
	}
	if _, err := parseArgs(fs, args[1:], 0, 0, "no arguments"); err != nil {
		return err
	}
	// A key made in a database no server uses signs nothing: a mistyped
	// --data-dir must not get a fresh database (and master key) that the
	// message below would call picked up.
	if err := needDatabase(*dbURL, *dataDir); err != nil {
		return err
	}
	store, err := openStore(ctx, *dbURL, *dataDir, false, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	switch args[0] {
	case "rotate":
		return rotateSigningKey(ctx, store, env, *dataDir, jwks.Config{Algorithm: *alg, TokenTTL: *ttl, Margin: *margin})
	case "list":
		return listSigningKeys(ctx, store, env, *asJSON)
	default:
		return fmt.Errorf("%w: unknown jwks command %q (rotate, list)", errUsage, args[0])
	}
}

// rotateSigningKey makes a new signing key with cfg's algorithm (the
// current key's without one) and retires the current key.
func rotateSigningKey(ctx context.Context, store core.Store, env Env, dataDir string, cfg jwks.Config) error {
	box, err := signingKeyCipher(ctx, store, env, dataDir)
	if err != nil {
		return err
	}
	// Without --jwt-algorithm the new key keeps the current key's
	// algorithm: a plain rotate switched an ES256 or EdDSA server's
	// signatures to RS256 until its next start.
	if cfg.Algorithm == "" {
		cur, err := currentKeyAlgorithm(ctx, store)
		if err != nil {
			return err
		}
		cfg.Algorithm = cmp.Or(cur, "RS256")
	}
	cfg.Store, cfg.Cipher = store, box
	m, err := jwks.New(ctx, cfg)
	if err != nil {
		return err
	}
	kid, err := m.Rotate(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "new signing key %s; running servers pick it up within seconds\n", kid)
	return nil
}

// signingKeyCipher is the cipher signing keys are sealed with, made from
// the master key ring (list needs none). A new master key is made only for a
// database that holds no keys yet.
func signingKeyCipher(ctx context.Context, store core.Store, env Env, dataDir string) (*secretbox.Box, error) {
	load := func() (secretbox.Keys, error) {
		return secretbox.LoadKeys(env.Getenv("LONGHOOK_MASTER_KEY"), env.Getenv("LONGHOOK_MASTER_KEY_FALLBACK"), dataDir)
	}
	keys, err := load()
	if errors.Is(err, secretbox.ErrNoKey) {
		stored, kerr := store.SigningKeys(ctx)
		if kerr != nil {
			return nil, kerr
		}
		if len(stored) > 0 {
			return nil, errNoKeyForSealedData(dataDir, "the database")
		}
		if _, err = secretbox.CreateKey(dataDir); err == nil {
			keys, err = load()
		}
	}
	if err != nil {
		return nil, err
	}
	return keys.Box()
}

// listSigningKeys prints the signing keys, current and retired, as a table.
func listSigningKeys(ctx context.Context, store core.Store, env Env, asJSON bool) error {
	keys, err := store.SigningKeys(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		// The table's columns; a time not reached yet is left out.
		type keyJSON struct {
			KID           string `json:"kid"`
			Algorithm     string `json:"alg"`
			CreateTime    string `json:"create_time"`
			RetireTime    string `json:"retire_time,omitempty"`
			UnpublishTime string `json:"unpublish_time,omitempty"`
		}
		out := struct {
			Keys []keyJSON `json:"keys"`
		}{Keys: []keyJSON{}}
		for _, k := range keys {
			out.Keys = append(out.Keys, keyJSON{KID: k.ID, Algorithm: k.Algorithm, CreateTime: jsonTime(k.CreateTime),
				RetireTime: jsonTime(k.RetireTime), UnpublishTime: jsonTime(k.ExpireTime)})
		}
		return printJSON(env.Stdout, out)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tCREATED\tRETIRED\tUNPUBLISHED AT")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.CreateTime.Format(time.RFC3339), fmtTime(k.RetireTime), fmtTime(k.ExpireTime))
	}
	return tw.Flush()
}

// jsonTime is t in RFC 3339, UTC, or "" for the zero time.
func jsonTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

// currentKeyAlgorithm is the algorithm of the newest signing key not yet
// retired ("" when there is none).
func currentKeyAlgorithm(ctx context.Context, store core.KeyStore) (string, error) {
	keys, err := store.SigningKeys(ctx)
	if err != nil {
		return "", err
	}
	var cur core.SigningKey
	for _, k := range keys {
		if k.RetireTime.IsZero() && k.CreateTime.After(cur.CreateTime) {
			cur = k
		}
	}
	return cur.Algorithm, nil
}
