package secretbox

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSealOpen(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{7}, KeySize)
	b, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := b.Seal([]byte("whsec_secret"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("whsec_secret")) {
		t.Fatal("sealed value contains the plaintext")
	}
	pt, err := b.Open(sealed)
	if err != nil || string(pt) != "whsec_secret" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := b.Open(sealed); !errors.Is(err, ErrOpen) {
		t.Fatalf("tampered: err = %v, want ErrOpen", err)
	}
	other, _ := New(bytes.Repeat([]byte{8}, KeySize))
	sealed2, _ := b.Seal([]byte("x"))
	if _, err := other.Open(sealed2); !errors.Is(err, ErrOpen) {
		t.Fatalf("wrong key: err = %v, want ErrOpen", err)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k1, created, err := LoadOrCreateKey("", dir)
	if err != nil || !created || len(k1) != KeySize {
		t.Fatalf("first: %v %v %d", err, created, len(k1))
	}
	st, err := os.Stat(filepath.Join(dir, KeyFileName))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", st.Mode(), err)
	}
	k2, created, err := LoadOrCreateKey("", dir)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Fatalf("second load differs: %v %v", err, created)
	}
	hex := "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	k3, _, err := LoadOrCreateKey(hex, dir)
	if err != nil || k3[31] != 0x1f {
		t.Fatalf("hex env: %v %x", err, k3)
	}
	if _, _, err := LoadOrCreateKey("short", dir); err == nil {
		t.Fatal("bad env key accepted")
	}
}
