package archive

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrWrongKey is returned when an archive object was encrypted with a key
// other than the one given (or none was given).
var ErrWrongKey = errors.New("wrong encryption key")

// Key is an AES-256 key for client-side encryption of archive objects.
// Its id (the first 8 bytes of its SHA-256, in hex) is stored in plaintext
// in every object, so a wrong key is named as such rather than failing as
// corruption.
type Key struct {
	aead cipher.AEAD
	id   string
}

// LoadKey reads a key file: 32 raw bytes, or 64 hex characters (with or
// without a trailing newline). Generate one with
// `head -c 32 /dev/urandom > amber.key`.
func LoadKey(path string) (*Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read encryption key: %w", err)
	}
	if s := strings.TrimSpace(string(b)); len(s) == 64 {
		if raw, err := hex.DecodeString(s); err == nil {
			b = raw
		}
	}
	if len(b) != 32 {
		return nil, fmt.Errorf("encryption key %s: %d bytes, want 32 raw bytes or 64 hex characters (head -c 32 /dev/urandom > %s)", path, len(b), path)
	}
	return NewKey(b)
}

// NewKey makes a key from 32 bytes.
func NewKey(raw []byte) (*Key, error) {
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	return &Key{aead: aead, id: hex.EncodeToString(sum[:8])}, nil
}

// ID names the key without revealing it.
func (k *Key) ID() string {
	if k == nil {
		return ""
	}
	return k.id
}

// seal encrypts plain into dst as nonce | ciphertext | tag, binding it to
// aad (the object key and block number) so blocks cannot be swapped.
func (k *Key) seal(dst, plain, aad []byte) []byte {
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	dst = append(dst, nonce...)
	return k.aead.Seal(dst, nonce, plain, aad)
}

func (k *Key) open(sealed, aad []byte) ([]byte, error) {
	n := k.aead.NonceSize()
	if len(sealed) < n+k.aead.Overhead() {
		return nil, fmt.Errorf("%w: encrypted block of %d bytes is truncated", ErrCorrupt, len(sealed))
	}
	plain, err := k.aead.Open(nil, sealed[:n], sealed[n:], aad)
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed (the object was altered)", ErrCorrupt)
	}
	return plain, nil
}

// checkKey compares the key id an object was written with to the key
// given, and says which key is needed.
func checkKey(objectKeyID string, k *Key, object string) error {
	switch {
	case objectKeyID == "" && k == nil, objectKeyID != "" && k != nil && objectKeyID == k.id:
		return nil
	case objectKeyID == "":
		return nil // a plaintext object read with a key configured: fine
	case k == nil:
		return fmt.Errorf("%w: %s is encrypted with key id %s; give that key with --encryption-key-file", ErrWrongKey, object, objectKeyID)
	default:
		return fmt.Errorf("%w: %s is encrypted with key id %s, the key given has id %s", ErrWrongKey, object, objectKeyID, k.id)
	}
}
