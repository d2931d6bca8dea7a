package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/client"
	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/pgtest"
	"github.com/longhook/longhook/internal/secretbox"
	"github.com/longhook/longhook/webhook"
)

const mkAPIKey = "masterkey-test-0123456789abcdef0123456789abcdef"

// mkReceiver is a webhook receiver (the remote side) that hands each
// request it gets to the test.
type mkReceiver struct {
	*httptest.Server
	got chan mkRequest
}

type mkRequest struct {
	h    http.Header
	body []byte
}

func newMKReceiver(t *testing.T) *mkReceiver {
	t.Helper()
	r := &mkReceiver{got: make(chan mkRequest, 16)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.got <- mkRequest{req.Header.Clone(), body}
	}))
	t.Cleanup(r.Close)
	return r
}

// deliverVerified publishes an event to the project of the test key and
// checks that rcv gets it, and every delivery before it, signed with
// secret, as the independent verifier (the public webhook package)
// checks it.
func deliverVerified(t *testing.T, url string, rcv *mkReceiver, secret string) {
	t.Helper()
	c, err := client.New(url, mkAPIKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	batch := "batches/" + core.NewID()
	_, err = c.Publish(ctx, client.PublishParams{Type: core.EventBatchSucceeded, Data: json.RawMessage(`{"batch":"` + batch + `"}`)})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	v, err := webhook.NewVerifier([]string{secret})
	if err != nil {
		t.Fatal(err)
	}
	for { // rcv may get earlier events first (every webhook of the test subscribes to the type)
		select {
		case r := <-rcv.got:
			if err := v.Verify(r.h, r.body); err != nil {
				t.Fatalf("the delivery does not verify with the webhook's secret: %v", err)
			}
			if bytes.Contains(r.body, []byte(batch)) {
				return
			}
		case <-ctx.Done():
			t.Fatal("no delivery")
		}
	}
}

// createHook creates a webhook to rcv and returns its signing secret.
func createHook(t *testing.T, url string, rcv *mkReceiver) string {
	t.Helper()
	c, err := client.New(url, mkAPIKey)
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.CreateWebhook(context.Background(), client.WebhookParams{URI: rcv.URL, SubscribedEvents: []string{core.EventBatchSucceeded}})
	if err != nil {
		t.Fatalf("create webhook: %v", err)
	}
	return w.NewSigningSecret
}

// jwksKids are the key ids serve publishes.
func jwksKids(t *testing.T, url string) []string {
	t.Helper()
	resp, err := http.Get(url + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set webhook.JWKS
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	slices.Sort(kids)
	return kids
}

// sealedInDB reads every sealed value of the database of dbURL (empty:
// the SQLite database in dir).
func sealedInDB(t *testing.T, dbURL, dir string) []core.SealedValue {
	t.Helper()
	st, err := openStore(context.Background(), dbURL, dir, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var got []core.SealedValue
	errStop := errors.New("read only")
	err = st.(core.Resealer).ResealSecrets(context.Background(), func(v []core.SealedValue) ([][]byte, error) {
		got = v
		return nil, errStop
	})
	if err != errStop {
		t.Fatal(err)
	}
	return got
}

// checkSealedUnder fails unless every sealed value in the database of
// dbURL (empty: dir's SQLite database) opens with key and none with any
// of others.
func checkSealedUnder(t *testing.T, dbURL, dir string, key []byte, others ...[]byte) {
	t.Helper()
	vals := sealedInDB(t, dbURL, dir)
	if len(vals) == 0 {
		t.Fatal("no sealed values in the database")
	}
	box, _ := secretbox.New(key)
	for _, v := range vals {
		if _, err := box.Open(v.Sealed); err != nil {
			t.Errorf("%s %s does not open with the expected key: %v", v.Kind, v.ID, err)
		}
		for _, o := range others {
			ob, _ := secretbox.New(o)
			if _, err := ob.Open(v.Sealed); err == nil {
				t.Errorf("%s %s still opens with a replaced key", v.Kind, v.ID)
			}
		}
	}
}

// readKey reads the key file at path.
func readKey(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := secretbox.LoadKey(string(b), "") // decodes it as it would LONGHOOK_MASTER_KEY
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return k
}

// TestMasterKeyRotate: `master-key rotate` on a SQLite data dir. A serve
// makes a webhook (its secret noted) and a JWKS key; rotate is refused
// while serve holds the database; once serve stops, rotate re-seals both
// under a new master.key and keeps the old key as master.key.previous;
// the next serve delivers signed with the SAME secret (checked by the
// public webhook package) and publishes the same kid, and the old key
// opens none of the database's values.
func TestMasterKeyRotate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"LONGHOOK_BOOTSTRAP_API_KEY": mkAPIKey}
	rcv := newMKReceiver(t)
	var secret string
	var kids []string
	serveArgsUntilReady(t, env, func(url string) {
		secret = createHook(t, url, rcv)
		deliverVerified(t, url, rcv, secret)
		kids = jwksKids(t, url)
		code, out, errs := run(t, nil, "master-key", "rotate", "--data-dir", dir)
		if code != 1 || !strings.Contains(errs, "is in use by another longhook serve") || !strings.Contains(errs, hintRotate) {
			t.Errorf("rotate beside serve: exit %d, %q %q; want exit 1, in use", code, out, errs)
		}
	}, "--data-dir", dir, "--dev")
	if len(kids) != 1 {
		t.Fatalf("kids %v", kids)
	}
	if _, err := os.Stat(filepath.Join(dir, secretbox.PendingKeyFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused rotate left a pending key: %v", err)
	}
	old := readKey(t, filepath.Join(dir, secretbox.KeyFileName))
	checkSealedUnder(t, "", dir, old)

	code, out, errs := run(t, nil, "master-key", "rotate", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "1 webhook secret and 1 signing key re-sealed") {
		t.Fatalf("rotate: exit %d, %q %q", code, out, errs)
	}
	cur := readKey(t, filepath.Join(dir, secretbox.KeyFileName))
	if bytes.Equal(cur, old) {
		t.Fatal("master.key did not change")
	}
	if prev := readKey(t, filepath.Join(dir, secretbox.PreviousKeyFileName)); !bytes.Equal(prev, old) {
		t.Fatal("master.key.previous is not the old key")
	}
	checkSealedUnder(t, "", dir, cur, old)

	serveArgsUntilReady(t, env, func(url string) {
		deliverVerified(t, url, rcv, secret)
		if got := jwksKids(t, url); !slices.Equal(got, kids) {
			t.Errorf("after the rotation JWKS publishes %v, want %v", got, kids)
		}
	}, "--data-dir", dir, "--dev")

	// An environment key is not rotate's to change.
	envKey := map[string]string{"LONGHOOK_MASTER_KEY": base64.StdEncoding.EncodeToString(cur)}
	if code, _, errs := run(t, envKey, "master-key", "rotate", "--data-dir", dir); code != 2 || !strings.Contains(errs, "LONGHOOK_MASTER_KEY is set") {
		t.Errorf("rotate with LONGHOOK_MASTER_KEY: exit %d, %q; want 2", code, errs)
	}
}

// TestMasterKeyRotateWithAWrongKey: rotate on a data dir whose master.key
// opens none of the database's values (a key restored from the wrong
// backup) exits 1 and changes nothing — no master.key.next is left, which
// serve would have warned of as a rotation under way and reseal refused
// on. With the right key back, reseal runs and serve starts without the
// warning.
func TestMasterKeyRotateWithAWrongKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"LONGHOOK_BOOTSTRAP_API_KEY": mkAPIKey}
	serveArgsUntilReady(t, env, func(string) {}, "--data-dir", dir, "--dev")
	keyFile := filepath.Join(dir, secretbox.KeyFileName)
	right, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	wrong, _ := secretbox.NewKey()
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(wrong)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadDir(dir)
	code, out, errs := run(t, nil, "master-key", "rotate", "--data-dir", dir)
	if code != 1 || !strings.Contains(errs, "nothing was changed") {
		t.Fatalf("rotate with a wrong master.key: exit %d, %q %q; want exit 1, nothing was changed", code, out, errs)
	}
	after, _ := os.ReadDir(dir)
	if _, err := os.Stat(filepath.Join(dir, secretbox.PendingKeyFileName)); !errors.Is(err, os.ErrNotExist) || len(after) != len(before) {
		t.Fatalf("the refused rotate changed the data dir: %v -> %v (pending key: %v)", before, after, err)
	}
	if !bytes.Equal(readKey(t, keyFile), wrong) {
		t.Fatal("the refused rotate replaced master.key")
	}

	if err := os.WriteFile(keyFile, right, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := run(t, nil, "master-key", "reseal", "--data-dir", dir); code != 0 {
		t.Fatalf("reseal with the right key after the refused rotate: exit %d, %q %q", code, out, errs)
	}
	_, logs := serveArgsUntilReady(t, env, func(string) {}, "--data-dir", dir, "--dev")
	if strings.Contains(logs, "serve.master_key_rotation_unfinished") {
		t.Errorf("serve warns of a rotation after a refused one: %s", logs)
	}
}

// TestMasterKeyRotateResumes: a rotation that stopped part way — the
// pending key written; then its re-seal committed but master.key not yet
// replaced (made here by reseal with the pending key as primary) — leaves
// a data dir serve starts on and delivers from at each point, a webhook
// created in between included; rotate run again finishes it with the
// pending key.
func TestMasterKeyRotateResumes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"LONGHOOK_BOOTSTRAP_API_KEY": mkAPIKey}
	rcv1, rcv2 := newMKReceiver(t), newMKReceiver(t)
	var secret1, secret2 string
	serveArgsUntilReady(t, env, func(url string) {
		secret1 = createHook(t, url, rcv1)
	}, "--data-dir", dir, "--dev")
	old := readKey(t, filepath.Join(dir, secretbox.KeyFileName))

	// Crash 1: right after the pending key was written.
	next, resumed, err := secretbox.PendingKey(dir)
	if err != nil || resumed {
		t.Fatal(err, resumed)
	}
	_, logs := serveArgsUntilReady(t, env, func(url string) {
		deliverVerified(t, url, rcv1, secret1)
	}, "--data-dir", dir, "--dev")
	if !strings.Contains(logs, "serve.master_key_rotation_unfinished") {
		t.Errorf("serve did not warn of the unfinished rotation: %s", logs)
	}

	// Crash 2: the re-seal under the pending key committed, master.key
	// not replaced yet.
	resealEnv := map[string]string{
		"LONGHOOK_MASTER_KEY":          base64.StdEncoding.EncodeToString(next),
		"LONGHOOK_MASTER_KEY_FALLBACK": base64.StdEncoding.EncodeToString(old),
	}
	if code, out, errs := run(t, resealEnv, "master-key", "reseal", "--data-dir", dir); code != 0 || !strings.Contains(out, "1 webhook secret and 1 signing key re-sealed") {
		t.Fatalf("reseal: exit %d, %q %q", code, out, errs)
	}
	checkSealedUnder(t, "", dir, next, old)
	serveArgsUntilReady(t, env, func(url string) {
		deliverVerified(t, url, rcv1, secret1)
		secret2 = createHook(t, url, rcv2) // sealed under the old key
	}, "--data-dir", dir, "--dev")

	// reseal on the data-dir key refuses while the rotation is pending.
	if code, _, errs := run(t, nil, "master-key", "reseal", "--data-dir", dir); code != 1 || !strings.Contains(errs, "rotation is under way") {
		t.Errorf("reseal during a rotation: exit %d, %q", code, errs)
	}
	code, out, errs := run(t, nil, "master-key", "rotate", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "finishing the rotation") || !strings.Contains(out, "1 webhook secret and 0 signing keys re-sealed") {
		t.Fatalf("rotate again: exit %d, %q %q", code, out, errs)
	}
	if cur := readKey(t, filepath.Join(dir, secretbox.KeyFileName)); !bytes.Equal(cur, next) {
		t.Fatal("the resumed rotation did not install the pending key")
	}
	checkSealedUnder(t, "", dir, next, old)
	_, logs = serveArgsUntilReady(t, env, func(url string) {
		deliverVerified(t, url, rcv1, secret1)
		deliverVerified(t, url, rcv2, secret2)
	}, "--data-dir", dir, "--dev")
	if strings.Contains(logs, "serve.master_key_rotation_unfinished") {
		t.Errorf("serve warns of an unfinished rotation after it finished: %s", logs)
	}
}

// TestMasterKeyResealPostgres: the rolling rotation of an environment key
// on PostgreSQL. With the new key primary and the old one a fallback,
// serve delivers; reseal re-seals everything (and a second run finds
// nothing to do); without the fallback, serve still delivers with the
// same secret. reseal without the old key names what it cannot open,
// exits 1, and changes nothing.
func TestMasterKeyResealPostgres(t *testing.T) {
	base := pgtest.URL(t)
	t.Parallel()
	dbURL, drop, err := tempPostgresDB(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	b64 := base64.StdEncoding.EncodeToString
	env := map[string]string{"LONGHOOK_BOOTSTRAP_API_KEY": mkAPIKey, "LONGHOOK_MASTER_KEY": b64(k1)}
	args := []string{"--data-dir", t.TempDir(), "--database-url", dbURL, "--dev", "--migrate"}
	rcv := newMKReceiver(t)
	var secret string
	serveArgsUntilReady(t, env, func(url string) { secret = createHook(t, url, rcv) }, args...)

	// Step 2: the new key primary, the old a fallback.
	env["LONGHOOK_MASTER_KEY"], env["LONGHOOK_MASTER_KEY_FALLBACK"] = b64(k2), b64(k1)
	serveArgsUntilReady(t, env, func(url string) {
		deliverVerified(t, url, rcv, secret)
		// Step 3, while serve runs.
		code, out, errs := run(t, env, "master-key", "reseal", "--database-url", dbURL)
		if code != 0 || !strings.Contains(out, "1 webhook secret and 1 signing key re-sealed under the primary master key; 0 already were") {
			t.Errorf("reseal: exit %d, %q %q", code, out, errs)
		}
		deliverVerified(t, url, rcv, secret)
	}, args...)
	code, out, errs := run(t, env, "master-key", "reseal", "--database-url", dbURL)
	if code != 0 || !strings.Contains(out, "0 webhook secrets and 0 signing keys re-sealed under the primary master key; 2 already were") {
		t.Errorf("reseal again: exit %d, %q %q", code, out, errs)
	}

	// Step 4: the fallback dropped.
	delete(env, "LONGHOOK_MASTER_KEY_FALLBACK")
	serveArgsUntilReady(t, env, func(url string) { deliverVerified(t, url, rcv, secret) }, args...)

	// A key the database's values are not under, with no fallback:
	// refused, nothing changed (k2 still opens everything).
	bad := map[string]string{"LONGHOOK_MASTER_KEY": b64(k1)}
	code, out, errs = run(t, bad, "master-key", "reseal", "--database-url", dbURL)
	if code != 1 || !strings.Contains(errs, "no configured master key opens 2 sealed values: webhook secret ") || !strings.Contains(errs, "signing key ") || !strings.Contains(errs, "nothing was changed") {
		t.Errorf("reseal without the key: exit %d, %q %q", code, out, errs)
	}
	serveArgsUntilReady(t, env, func(url string) { deliverVerified(t, url, rcv, secret) }, args...)
}

// TestMasterKeyNew: new prints a key that LONGHOOK_MASTER_KEY accepts, in
// base64 or hex; each run a different one.
func TestMasterKeyNew(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, enc := range []string{"base64", "hex", "base64"} {
		code, out, errs := run(t, nil, "master-key", "new", "--encoding", enc)
		key := strings.TrimSpace(out)
		if code != 0 || seen[key] {
			t.Fatalf("new --encoding %s: exit %d, %q %q", enc, code, out, errs)
		}
		seen[key] = true
		if k, err := secretbox.LoadKey(key, ""); err != nil || len(k) != secretbox.KeySize {
			t.Fatalf("new --encoding %s printed %q: %v", enc, key, err)
		}
	}
	if code, _, errs := run(t, nil, "master-key", "new", "--encoding", "rot13"); code != 2 || !strings.Contains(errs, "--encoding") {
		t.Errorf("bad --encoding: exit %d, %q", code, errs)
	}
	if code, _, errs := run(t, map[string]string{"LONGHOOK_MASTER_KEY_FALLBACK": "nope"}, "serve", "--data-dir", t.TempDir()); code != 2 || !strings.Contains(errs, "LONGHOOK_MASTER_KEY_FALLBACK") {
		t.Errorf("serve with a bad fallback key: exit %d, %q", code, errs)
	}
}

// TestMasterKeyRotatePostgres: rotate on a data-dir key with PostgreSQL:
// serve (stopped) made a webhook and a JWKS key; after rotate the next
// serve, on the same data dir, delivers signed with the same secret and
// publishes the same kid, and the old key opens none of the values.
func TestMasterKeyRotatePostgres(t *testing.T) {
	base := pgtest.URL(t)
	t.Parallel()
	dbURL, drop, err := tempPostgresDB(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	dir := t.TempDir()
	env := map[string]string{"LONGHOOK_BOOTSTRAP_API_KEY": mkAPIKey}
	args := []string{"--data-dir", dir, "--database-url", dbURL, "--dev", "--migrate"}
	rcv := newMKReceiver(t)
	var secret string
	var kids []string
	serveArgsUntilReady(t, env, func(url string) {
		secret = createHook(t, url, rcv)
		kids = jwksKids(t, url)
	}, args...)
	old := readKey(t, filepath.Join(dir, secretbox.KeyFileName))

	// One rotation of a data dir at a time: no database lock guards
	// PostgreSQL, and two rotates at once (each its own key, one
	// master.key.next) left a master.key that opened no secret. A rotate
	// beside one that holds the data dir's rotation lock is refused and
	// changes nothing.
	held, busy, err := lockFile(filepath.Join(dir, rotationLockName), "master-key rotate")
	if err != nil || busy != nil {
		t.Fatal(err, busy)
	}
	code, out, errs := run(t, nil, "master-key", "rotate", "--data-dir", dir, "--database-url", dbURL)
	held.release(true)
	if code != 1 || !strings.Contains(errs, "is rotating the master key") {
		t.Fatalf("rotate beside another rotate: exit %d, %q %q; want exit 1, refused", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, secretbox.PendingKeyFileName)); !errors.Is(err, os.ErrNotExist) || !bytes.Equal(readKey(t, filepath.Join(dir, secretbox.KeyFileName)), old) {
		t.Fatalf("the refused rotate changed the keys (pending key: %v)", err)
	}
	checkSealedUnder(t, dbURL, dir, old)

	code, out, errs = run(t, nil, "master-key", "rotate", "--data-dir", dir, "--database-url", dbURL)
	if code != 0 || !strings.Contains(out, "1 webhook secret and 1 signing key re-sealed") || !strings.Contains(out, "give every serve") {
		t.Fatalf("rotate: exit %d, %q %q", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, rotationLockName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("rotate left its lock file: %v", err)
	}
	cur := readKey(t, filepath.Join(dir, secretbox.KeyFileName))
	checkSealedUnder(t, dbURL, dir, cur, old)
	serveArgsUntilReady(t, env, func(url string) {
		deliverVerified(t, url, rcv, secret)
		if got := jwksKids(t, url); !slices.Equal(got, kids) {
			t.Errorf("after the rotation JWKS publishes %v, want %v", got, kids)
		}
	}, args...)
}
