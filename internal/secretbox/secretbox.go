// Package secretbox seals secrets at rest with AES-256-GCM under the
// server's master key, which comes from LONGHOOK_MASTER_KEY or from a 0600
// key file created in the data directory on first start.
//
// A Box is a key ring: its primary key seals, fallback keys only open.
// Fallbacks make rotating the master key possible (ring.go, and
// docs/design.md, "Master key rotation").
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the master key length (AES-256).
const KeySize = 32

// version prefixes every sealed value so the format can evolve.
const version byte = 1

// Box implements core.Cipher with a key ring: the primary key seals, and
// Open tries the primary, then each fallback key in order.
type Box struct {
	aeads []cipher.AEAD // [0] is the primary
}

// New returns a Box whose primary key is key (32 bytes) and whose
// fallback keys, which only open, are fallbacks.
func New(key []byte, fallbacks ...[]byte) (*Box, error) {
	b := &Box{}
	for i, k := range append([][]byte{key}, fallbacks...) {
		if len(k) != KeySize {
			what := "master key"
			if i > 0 {
				what = fmt.Sprintf("fallback master key %d", i)
			}
			return nil, fmt.Errorf("secretbox: %s must be %d bytes, got %d", what, KeySize, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("secretbox: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("secretbox: %w", err)
		}
		b.aeads = append(b.aeads, aead)
	}
	return b, nil
}

// Fallbacks is the number of fallback keys.
func (b *Box) Fallbacks() int { return len(b.aeads) - 1 }

// Seal encrypts plaintext under the primary key: version byte, 12-byte
// random nonce, ciphertext.
func (b *Box) Seal(plaintext []byte) ([]byte, error) {
	aead := b.aeads[0]
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out[0] = version
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("secretbox: nonce: %w", err)
	}
	return aead.Seal(out, out[1:1+aead.NonceSize()], plaintext, []byte{version}), nil
}

// ErrOpen means a sealed value could not be decrypted: wrong master key or
// corrupted data.
var ErrOpen = errors.New("secretbox: cannot open sealed value (wrong master key or corrupted data)")

// Open decrypts a value produced by Seal under any key of the ring.
func (b *Box) Open(sealed []byte) ([]byte, error) {
	pt, _, err := b.OpenKey(sealed)
	return pt, err
}

// OpenKey is Open that also reports whether the value is sealed under the
// primary key (a value under a fallback key is one to re-seal).
func (b *Box) OpenKey(sealed []byte) (plaintext []byte, primary bool, err error) {
	for i, aead := range b.aeads {
		n := aead.NonceSize()
		if len(sealed) < 1+n+aead.Overhead() || sealed[0] != version {
			return nil, false, ErrOpen
		}
		if pt, err := aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte{version}); err == nil {
			return pt, i == 0, nil
		}
	}
	return nil, false, ErrOpen
}

// KeyFileName is the master key file inside the data directory.
const KeyFileName = "master.key"

// ErrNoKey is LoadKey's error when neither the environment nor the data
// directory holds a master key.
var ErrNoKey = errors.New("no master key")

// LoadOrCreateKey returns the master key: from env (base64 or 64 hex
// characters) when non-empty, else from dataDir/master.key, creating that
// file (mode 0600) with a random key if it does not exist. created reports
// whether a new key file was written.
func LoadOrCreateKey(env, dataDir string) (key []byte, created bool, err error) {
	key, err = LoadKey(env, dataDir)
	if !errors.Is(err, ErrNoKey) {
		return key, false, err
	}
	key, err = CreateKey(dataDir)
	return key, err == nil, err
}

// LoadKey returns the master key from env (base64 or 64 hex characters)
// when non-empty, else from dataDir/master.key; ErrNoKey when that file
// does not exist. It writes nothing.
func LoadKey(env, dataDir string) ([]byte, error) {
	if env = strings.TrimSpace(env); env != "" {
		key, err := decodeKey(env)
		if err != nil {
			return nil, fmt.Errorf("LONGHOOK_MASTER_KEY: %w", err)
		}
		return key, nil
	}
	path := filepath.Join(dataDir, KeyFileName)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist", ErrNoKey, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read master key: %w", err)
	}
	key, err := decodeKey(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// CreateKey writes a new random master key to dataDir/master.key (mode
// 0600, synced), refusing to replace an existing file, and returns it.
func CreateKey(dataDir string) ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dataDir, KeyFileName), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create master key file: %w", err)
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return key, f.Close()
}

func decodeKey(s string) ([]byte, error) {
	if len(s) == 64 {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("master key must decode to %d bytes, got %d", KeySize, len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("master key must be base64 or 64 hex characters encoding 32 bytes")
}
