package secretbox

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func sealWith(t *testing.T, k []byte, pt string) []byte {
	t.Helper()
	b, err := New(k)
	if err != nil {
		t.Fatal(err)
	}
	s, err := b.Seal([]byte(pt))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRing: the primary key seals; Open tries the primary, then each
// fallback; OpenKey tells which; a value under no key of the ring is
// ErrOpen.
func TestRing(t *testing.T) {
	t.Parallel()
	ring, err := New(key(1), key(2), key(3))
	if err != nil {
		t.Fatal(err)
	}
	if ring.Fallbacks() != 2 {
		t.Fatalf("Fallbacks = %d", ring.Fallbacks())
	}
	sealed, err := ring.Seal([]byte("new"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, primary, err := ring.OpenKey(sealed); err != nil || !primary || string(pt) != "new" {
		t.Fatalf("own value: %q %v %v", pt, primary, err)
	}
	if fallback, _ := New(key(2)); fallback != nil {
		if _, err := fallback.Open(sealed); !errors.Is(err, ErrOpen) {
			t.Fatal("a fallback key opens what the ring sealed: Seal did not use the primary")
		}
	}
	for _, k := range [][]byte{key(2), key(3)} {
		pt, primary, err := ring.OpenKey(sealWith(t, k, "old"))
		if err != nil || primary || string(pt) != "old" {
			t.Fatalf("value under fallback %x: %q %v %v", k[0], pt, primary, err)
		}
	}
	if _, _, err := ring.OpenKey(sealWith(t, key(4), "x")); !errors.Is(err, ErrOpen) {
		t.Fatalf("foreign value: %v", err)
	}
	if _, err := New(key(1), []byte("short")); err == nil || !strings.Contains(err.Error(), "fallback master key 1") {
		t.Fatalf("short fallback: %v", err)
	}
}

// TestLoadKeys: fallbacks come from LONGHOOK_MASTER_KEY_FALLBACK (base64
// or hex, comma-separated) and, for the data dir's key only, from the
// pending and previous key files; duplicates are dropped.
func TestLoadKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := LoadKeys("", "", dir); !errors.Is(err, ErrNoKey) {
		t.Fatalf("empty dir: %v", err)
	}
	env := base64.StdEncoding.EncodeToString(key(1))
	fb := hex.EncodeToString(key(2)) + ", " + base64.StdEncoding.EncodeToString(key(3)) + "," + env
	k, err := LoadKeys(env, fb, dir)
	if err != nil || !k.FromEnv || !bytes.Equal(k.Primary, key(1)) || len(k.Fallbacks) != 2 ||
		!bytes.Equal(k.Fallbacks[0], key(2)) || !bytes.Equal(k.Fallbacks[1], key(3)) {
		t.Fatalf("env ring: %+v %v", k, err)
	}
	if _, err := LoadKeys(env, "nope", dir); err == nil || !strings.Contains(err.Error(), "LONGHOOK_MASTER_KEY_FALLBACK") {
		t.Fatalf("bad fallback: %v", err)
	}

	write := func(name string, k []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(base64.StdEncoding.EncodeToString(k)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(KeyFileName, key(5))
	write(PendingKeyFileName, key(6))
	write(PreviousKeyFileName, key(5)) // a crash right after the copy
	k, err = LoadKeys("", hex.EncodeToString(key(2)), dir)
	if err != nil || k.FromEnv || !bytes.Equal(k.Primary, key(5)) || len(k.Fallbacks) != 2 ||
		!bytes.Equal(k.Fallbacks[0], key(2)) || !bytes.Equal(k.Fallbacks[1], key(6)) {
		t.Fatalf("data-dir ring: %+v %v", k, err)
	}
	// An environment key ignores the data dir's files.
	if k, err = LoadKeys(env, "", dir); err != nil || len(k.Fallbacks) != 0 {
		t.Fatalf("env key with key files in the dir: %+v %v", k, err)
	}
	write(PreviousKeyFileName, []byte("short"))
	if _, err := LoadKeys("", "", dir); err == nil || !strings.Contains(err.Error(), PreviousKeyFileName) {
		t.Fatalf("bad previous key file: %v", err)
	}
}

// TestRotationFiles walks a data-dir rotation through every crash point:
// at each, the ring LoadKeys builds opens values under the old key and
// under the new one, and PendingKey returns the same pending key.
func TestRotationFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old, err := CreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	underOld := sealWith(t, old, "old")
	opensAll := func(stage string, under ...[]byte) {
		t.Helper()
		k, err := LoadKeys("", "", dir)
		if err != nil {
			t.Fatalf("%s: %v", stage, err)
		}
		b, err := k.Box()
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range under {
			if _, err := b.Open(v); err != nil {
				t.Fatalf("%s: %v", stage, err)
			}
		}
	}
	// A crash while the pending file was written leaves its temporary;
	// one of another mode (a restore, another tool, a hand's) must not
	// lend it to the key file, which stays 0600.
	if err := os.WriteFile(filepath.Join(dir, PendingKeyFileName+".tmp"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, PendingKeyFileName+".tmp"), 0o644); err != nil {
		t.Fatal(err)
	}
	next, resumed, err := PendingKey(dir)
	if err != nil || resumed {
		t.Fatalf("PendingKey: %v %v", resumed, err)
	}
	if st, err := os.Stat(filepath.Join(dir, PendingKeyFileName)); err != nil {
		t.Fatal(err)
	} else if st.Mode().Perm() != 0o600 {
		t.Fatalf("pending key file: mode %v, want 0600", st.Mode())
	}
	underNext := sealWith(t, next, "next")
	opensAll("pending key written", underOld, underNext)
	again, resumed, err := PendingKey(dir)
	if err != nil || !resumed || !bytes.Equal(again, next) {
		t.Fatalf("PendingKey again: %v %v, same %v", resumed, err, bytes.Equal(again, next))
	}

	if err := CommitPendingKey(dir); err != nil {
		t.Fatal(err)
	}
	opensAll("committed", underOld, underNext)
	k, _ := LoadKeys("", "", dir)
	if !bytes.Equal(k.Primary, next) || len(k.Fallbacks) != 1 || !bytes.Equal(k.Fallbacks[0], old) {
		t.Fatalf("after commit: primary is next %v, fallbacks %d", bytes.Equal(k.Primary, next), len(k.Fallbacks))
	}
	if _, err := os.Stat(filepath.Join(dir, PendingKeyFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pending key file left: %v", err)
	}
	for _, name := range []string{KeyFileName, PreviousKeyFileName} {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", name, st, err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("files left in the dir: %v", entries)
	}

	// A second rotation keeps the first one's previous key beside, under
	// a name of its own: backups made before the first rotation need it.
	if _, _, err := PendingKey(dir); err != nil {
		t.Fatal(err)
	}
	if err := CommitPendingKey(dir); err != nil {
		t.Fatal(err)
	}
	if err := CommitPendingKey(dir); err == nil {
		t.Fatal("a commit without a pending key succeeded")
	}
	kept := 0
	entries, _ = os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), PreviousKeyFileName+".") {
			if got, err := readKeyFile(filepath.Join(dir, e.Name())); err == nil && bytes.Equal(got, old) {
				kept++
			}
		}
	}
	if prev, err := readKeyFile(filepath.Join(dir, PreviousKeyFileName)); err != nil || !bytes.Equal(prev, next) || kept != 1 {
		t.Fatalf("after a second rotation: previous is the first rotation's key %v (%v), the original kept %d times; files %v",
			bytes.Equal(prev, next), err, kept, entries)
	}
}
