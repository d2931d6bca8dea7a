package core

// Cipher seals secrets at rest (signing secrets, private keys) with the
// server's master key. Implementations use authenticated encryption; Open
// fails on tampered or foreign ciphertext.
type Cipher interface {
	Seal(plaintext []byte) ([]byte, error)
	Open(sealed []byte) ([]byte, error)
}
