package api

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// APIKeyPrefix starts every API key longhook issues, so keys are easy to
// recognise (and to find with secret scanners).
const APIKeyPrefix = "lh_"

// NewAPIKey returns a fresh API key: the plaintext to show the user once
// ("lh_" + base64url of 32 random bytes, 256 bits), the SHA-256 digest to
// store (core.APIKey.Digest) and a hint (its last 4 characters) for
// listings. The CLI uses it to bootstrap admin keys.
func NewAPIKey() (plaintext string, digest []byte, hint string) {
	var b [32]byte
	// crypto/rand.Read never fails on supported platforms (it panics
	// rather than return short reads since Go 1.24).
	_, _ = rand.Read(b[:])
	plaintext = APIKeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return plaintext, KeyDigest(plaintext), lastN(plaintext, 4)
}

// KeyDigest is the SHA-256 digest under which an API key is stored and
// looked up. API keys are 256-bit random values, so a slow password hash
// would add latency without adding security (docs/contract.md §8).
func KeyDigest(key string) []byte {
	d := sha256.Sum256([]byte(key))
	return d[:]
}

// signingSecretPrefix starts every webhook signing secret (Standard
// Webhooks).
const signingSecretPrefix = "whsec_"

// newSigningSecret returns "whsec_" + padded standard base64 of 32 random
// bytes: padded, because the npm standardwebhooks library rejects unpadded
// secrets.
func newSigningSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("signing secret: %w", err)
	}
	return signingSecretPrefix + base64.StdEncoding.EncodeToString(b[:]), nil
}

// truncatedSecret renders a secret hint the way Gemini shows it.
func truncatedSecret(hint string) string { return signingSecretPrefix + "..." + hint }

// lastN returns the last n bytes of s (s is ASCII).
func lastN(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
