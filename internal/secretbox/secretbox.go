// Package secretbox seals secrets at rest with AES-256-GCM under the
// server's master key, which comes from LONGHOOK_MASTER_KEY or from a 0600
// key file created in the data directory on first start.
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

// Box implements core.Cipher.
type Box struct {
	aead cipher.AEAD
}

// New returns a Box for a 32-byte master key.
func New(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secretbox: master key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext: version byte, 12-byte random nonce, ciphertext.
func (b *Box) Seal(plaintext []byte) ([]byte, error) {
	out := make([]byte, 1+b.aead.NonceSize(), 1+b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	out[0] = version
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("secretbox: nonce: %w", err)
	}
	return b.aead.Seal(out, out[1:1+b.aead.NonceSize()], plaintext, []byte{version}), nil
}

// ErrOpen means a sealed value could not be decrypted: wrong master key or
// corrupted data.
var ErrOpen = errors.New("secretbox: cannot open sealed value (wrong master key or corrupted data)")

// Open decrypts a value produced by Seal.
func (b *Box) Open(sealed []byte) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < 1+n+b.aead.Overhead() || sealed[0] != version {
		return nil, ErrOpen
	}
	pt, err := b.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte{version})
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
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
