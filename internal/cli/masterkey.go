package cli

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/secretbox"
)

// The master key seals the webhook signing secrets and the JWKS private
// keys (secretbox). master-key rotates it: `rotate` for the data dir's
// master.key in one command; `new` and `reseal` for a LONGHOOK_MASTER_KEY
// rotated by hand, instance by instance, with LONGHOOK_MASTER_KEY_FALLBACK.
// docs/design.md, "Master key rotation"; docs/operations.md, "Rotating the
// master key".
var masterKeyVerbs = []subcommand{
	{name: "rotate", summary: "replace the data dir's master.key, re-sealing every secret under the new key (stop serve first)"},
	{name: "new", summary: "print a new random master key (for LONGHOOK_MASTER_KEY)"},
	{name: "reseal", summary: "re-seal under the primary key every secret a fallback key opens (safe while serve runs)"},
}

// hintRotate ends rotate's refusal while serve runs on the SQLite database.
const hintRotate = "stop it first: serve holds the master key in memory and would go on sealing new secrets with the old one"

// errEnvKeyRotate is rotate's answer when the master key comes from the
// environment, which no command can change.
var errEnvKeyRotate = fmt.Errorf("%w: LONGHOOK_MASTER_KEY is set: master-key rotate replaces the data dir's master.key only; "+
	"rotate an environment key with 'longhook master-key new', LONGHOOK_MASTER_KEY_FALLBACK and 'longhook master-key reseal' "+
	"(docs/operations.md, \"Rotating the master key\")", errConfig)

func runMasterKey(ctx context.Context, args []string, env Env) error {
	if err := checkVerb("master-key", masterKeyVerbs, false, args, env); err != nil {
		return err
	}
	env = withVerb(env, masterKeyVerbs, args[0])
	fs := newFlagSet("master-key "+args[0], env)
	if args[0] == "new" {
		enc := fs.String("encoding", "base64", "encoding of the printed key: base64 or hex")
		if _, err := parseArgs(fs, args[1:], 0, 0, "no arguments"); err != nil {
			return err
		}
		return printNewKey(env, *enc)
	}
	dataDir, dbURL := storeFlags(fs)
	if _, err := parseArgs(fs, args[1:], 0, 0, "no arguments"); err != nil {
		return err
	}
	if args[0] == "rotate" && strings.TrimSpace(env.Getenv("LONGHOOK_MASTER_KEY")) != "" {
		return errEnvKeyRotate
	}
	if args[0] == "rotate" {
		l, err := lockRotation(*dataDir)
		if err != nil {
			return err
		}
		defer l.release(true)
	}
	keys, err := secretbox.LoadKeys(env.Getenv("LONGHOOK_MASTER_KEY"), env.Getenv("LONGHOOK_MASTER_KEY_FALLBACK"), *dataDir)
	if errors.Is(err, secretbox.ErrNoKey) {
		return fmt.Errorf("%w: set LONGHOOK_MASTER_KEY or --data-dir to the server's (serve makes the key on its first start)", err)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", errConfig, err)
	}
	if err := needDatabase(*dbURL, *dataDir); err != nil {
		return err
	}
	if args[0] == "rotate" {
		return rotateMasterKey(ctx, env, *dbURL, *dataDir, keys)
	}
	return resealSecrets(ctx, env, *dbURL, *dataDir, keys)
}

// rotationLockName is the lock file rotate holds beside master.key. Two
// rotations of one data dir at once each made a key and wrote it to
// master.key.next through one temporary file, and the one that finished
// could install a key other than the one it re-sealed under: with
// PostgreSQL, which no database lock guards, two concurrent rotates left a
// master.key that opened none of the secrets.
const rotationLockName = secretbox.KeyFileName + ".lock"

// lockRotation takes dataDir's rotation lock (nil when dataDir does not
// exist: LoadKeys then says there is no key), or refuses while another
// rotate holds it.
func lockRotation(dataDir string) (*dbLock, error) {
	if _, err := os.Stat(dataDir); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	l, busy, err := lockFile(filepath.Join(dataDir, rotationLockName), "master-key rotate")
	if busy != nil {
		return nil, fmt.Errorf("%s is rotating the master key of %s: wait for it to end (run rotate again if it failed)", *busy, dataDir)
	}
	return l, err
}

// printNewKey prints a new random master key in enc.
func printNewKey(env Env, enc string) error {
	key, err := secretbox.NewKey()
	if err != nil {
		return err
	}
	switch enc {
	case "base64":
		fmt.Fprintln(env.Stdout, base64.StdEncoding.EncodeToString(key))
	case "hex":
		fmt.Fprintln(env.Stdout, hex.EncodeToString(key))
	default:
		return fmt.Errorf("%w: --encoding %q: use base64 or hex", errUsage, enc)
	}
	return nil
}

// rotateMasterKey is `master-key rotate`: a new key is written to
// master.key.next first; every sealed value is re-sealed under it in one
// transaction; then master.key is kept as master.key.previous and
// master.key.next renamed over it. A crash at any point leaves keys that
// open every value (secretbox.LoadKeys), and running rotate again
// finishes the rotation with the same pending key.
func rotateMasterKey(ctx context.Context, env Env, dbURL, dataDir string, keys secretbox.Keys) error {
	if !isPostgres(dbURL) {
		l, err := lockDatabase(sqlitePath(dbURL, dataDir), "master-key rotate", hintRotate)
		if err != nil {
			return err
		}
		defer l.release(false)
	}
	st, err := openStore(ctx, dbURL, dataDir, false, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	next, resumed, err := secretbox.NextKey(dataDir)
	if err != nil {
		return err
	}
	if resumed {
		fmt.Fprintf(env.Stdout, "finishing the rotation an earlier run began (%s)\n", filepath.Join(dataDir, secretbox.PendingKeyFileName))
	}
	box, err := secretbox.New(next, append([][]byte{keys.Primary}, keys.Fallbacks...)...)
	if err != nil {
		return err
	}
	// The new key is written (master.key.next) once every value opens and
	// before the re-seal commits: a refused rotation leaves no file behind.
	save := func() error {
		if resumed {
			return nil
		}
		return secretbox.SavePendingKey(dataDir, next)
	}
	n, err := reseal(ctx, st, box, save)
	if err != nil {
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	if err := secretbox.CommitPendingKey(dataDir); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "master key rotated: %s re-sealed under the new %s\n", n, filepath.Join(dataDir, secretbox.KeyFileName))
	fmt.Fprintf(env.Stdout, "the old key is now %s: it opens backups made before this rotation — keep it with them, then delete it here\n",
		filepath.Join(dataDir, secretbox.PreviousKeyFileName))
	if isPostgres(dbURL) {
		fmt.Fprintln(env.Stdout, "give every serve of this database the new master.key before it starts again")
	}
	return nil
}

// resealSecrets is `master-key reseal`: every value a fallback key opens
// is re-sealed under the primary key, in one transaction.
func resealSecrets(ctx context.Context, env Env, dbURL, dataDir string, keys secretbox.Keys) error {
	if !keys.FromEnv {
		if _, err := os.Stat(filepath.Join(dataDir, secretbox.PendingKeyFileName)); err == nil {
			return fmt.Errorf("a master key rotation is under way (%s exists): finish it with 'longhook master-key rotate'",
				filepath.Join(dataDir, secretbox.PendingKeyFileName))
		}
	}
	box, err := keys.Box()
	if err != nil {
		return err
	}
	st, err := openStore(ctx, dbURL, dataDir, false, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := reseal(ctx, st, box, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s re-sealed under the primary master key; %d already were\n", n, n.kept)
	return st.Close()
}

// resealCounts counts what reseal did.
type resealCounts struct {
	secrets, keys int // re-sealed
	kept          int // already under the primary key
}

func (n resealCounts) String() string {
	return fmt.Sprintf("%s and %s", count(n.secrets, "webhook secret"), count(n.keys, "signing key"))
}

// count is "1 what" or "N whats".
func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// reseal re-seals, in one transaction, every sealed value of st that box
// opens with a fallback key under its primary key. When any value opens
// with no key of box, nothing is changed and the error names them.
// Otherwise ready (when not nil) runs before anything is written, and its
// error changes nothing either.
func reseal(ctx context.Context, st core.Store, box *secretbox.Box, ready func() error) (resealCounts, error) {
	rs, ok := st.(core.Resealer)
	if !ok {
		return resealCounts{}, fmt.Errorf("the %s store cannot re-seal secrets", st.Capabilities().Driver)
	}
	var n resealCounts
	err := rs.ResealSecrets(ctx, func(vals []core.SealedValue) ([][]byte, error) {
		n = resealCounts{}
		out := make([][]byte, len(vals))
		var failed []string
		for i, v := range vals {
			pt, primary, err := box.OpenKey(v.Sealed)
			switch {
			case err != nil:
				failed = append(failed, string(v.Kind)+" "+v.ID)
				continue
			case primary:
				n.kept++
				continue
			}
			if out[i], err = box.Seal(pt); err != nil {
				return nil, err
			}
			if v.Kind == core.SealedWebhookSecret {
				n.secrets++
			} else {
				n.keys++
			}
		}
		if len(failed) > 0 {
			total, more := len(failed), ""
			if len(failed) > 10 {
				failed, more = failed[:10], fmt.Sprintf(" and %d more", len(failed)-10)
			}
			return nil, fmt.Errorf("no configured master key opens %s: %s%s; nothing was changed — "+
				"add the key they were sealed with to LONGHOOK_MASTER_KEY_FALLBACK",
				count(total, "sealed value"), strings.Join(failed, ", "), more)
		}
		if ready != nil {
			if err := ready(); err != nil {
				return nil, err
			}
		}
		return out, nil
	})
	return n, err
}

// logKeyRing tells, at serve's start, that fallback master keys are
// configured, and warns of a data-dir rotation left unfinished.
func (s *Server) logKeyRing(keys secretbox.Keys, box *secretbox.Box) {
	if n := box.Fallbacks(); n > 0 {
		s.log.Info("serve.master_key_fallbacks", slog.Int("fallback_keys", n),
			slog.String("hint", "fallback keys open secrets sealed before a master key rotation; 'longhook master-key reseal' re-seals any such secret under the primary key (docs/operations.md, \"Rotating the master key\")"))
	}
	if keys.FromEnv {
		return
	}
	pending := filepath.Join(s.cfg.DataDir, secretbox.PendingKeyFileName)
	if _, err := os.Stat(pending); err == nil {
		s.log.Warn("serve.master_key_rotation_unfinished", slog.String("pending_key", pending),
			slog.String("fix", "stop serve and run 'longhook master-key rotate' again to finish the rotation"))
	}
}
