package export

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
)

// Signing keys are ed25519. A private key file is PEM "PRIVATE KEY"
// (PKCS#8, what `openssl genpkey -algorithm ed25519` writes) or the raw 64
// bytes of Go's ed25519.PrivateKey (seed then public key); a public key
// file is PEM "PUBLIC KEY" (PKIX, `openssl pkey -pubout`) or the raw 32
// bytes. A signature file is the raw 64-byte signature of the manifest's
// bytes, so `openssl pkeyutl -verify -pubin -inkey KEY.pub -rawin -in
// MANIFEST.json -sigfile MANIFEST.sig` checks it without amber.

// KeyID names a public key: the first 8 bytes of its SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// GenerateKey writes a new private key to path (PKCS#8 PEM, mode 0600)
// and its public key to path.pub (PKIX PEM). It refuses to replace
// either file.
func GenerateKey(path string) (ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	for _, p := range []string{path, path + ".pub"} {
		if _, err := os.Lstat(p); err == nil {
			return nil, fmt.Errorf("%s exists: a key is never overwritten; choose another name or remove it", p)
		}
	}
	if err := writeNew(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	if err := writeNew(path+".pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		return nil, err
	}
	return pub, nil
}

func writeNew(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// LoadPrivateKey reads a signing key file.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type == "PUBLIC KEY" {
			return nil, fmt.Errorf("signing key %s is a public key: give the private key (amber export --gen-key FILE writes both)", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %v: want an ed25519 private key, PEM PKCS#8 (openssl genpkey -algorithm ed25519)", path, err)
		}
		priv, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("signing key %s is a %T, want ed25519", path, k)
		}
		return priv, nil
	}
	if len(b) == ed25519.PrivateKeySize {
		priv := ed25519.NewKeyFromSeed(b[:ed25519.SeedSize])
		if !bytes.Equal(priv[ed25519.SeedSize:], b[ed25519.SeedSize:]) {
			return nil, fmt.Errorf("signing key %s: 64 raw bytes whose second half is not the first half's public key", path)
		}
		return priv, nil
	}
	return nil, fmt.Errorf("signing key %s: %d bytes, want PEM PKCS#8 or 64 raw bytes (amber export --gen-key FILE makes one)", path, len(b))
}

// LoadPublicKey reads a public key file.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read public key: %w", err)
	}
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("public key %s holds a PEM %q: give the public key (FILE.pub next to the key amber export --gen-key FILE made)", path, blk.Type)
		}
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public key %s: %w", path, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key %s is a %T, want ed25519", path, k)
		}
		return pub, nil
	}
	if len(b) == ed25519.PublicKeySize {
		return ed25519.PublicKey(b), nil
	}
	return nil, fmt.Errorf("public key %s: %d bytes, want PEM (PUBLIC KEY) or 32 raw bytes", path, len(b))
}
