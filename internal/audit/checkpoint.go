package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/tokenward/tokenward"
)

// Checkpoint is a signed statement by the install that the chain's entry
// Seq had hash Hash at Time. Verification compares it with the stored
// entry: a rewritten chain or a deleted tail up to Seq no longer matches.
type Checkpoint struct {
	Seq       int64     `json:"seq"`
	Hash      string    `json:"hash"`
	Time      time.Time `json:"time"`
	KeyID     string    `json:"key_id"`    // KeyID of the signing public key
	Signature []byte    `json:"signature"` // Ed25519 over CheckpointMessage
}

const checkpointMagic = "tokenward-audit-checkpoint-v1\x00"

// CheckpointMessage returns the bytes a checkpoint signs (version 1): a
// domain-separating prefix, then Seq, Hash (length-prefixed) and Time
// (seconds and nanoseconds since the Unix epoch), big-endian.
func CheckpointMessage(seq int64, hash string, t time.Time) []byte {
	b := make([]byte, 0, len(checkpointMagic)+8+4+len(hash)+12)
	b = append(b, checkpointMagic...)
	b = appendInt(b, seq)
	b = appendString(b, hash)
	return appendTime(b, t)
}

// KeyID returns a short, stable name for a public key: the hex of the first
// 8 bytes of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// VerifyCheckpoint reports whether cp carries a valid signature by pub.
func VerifyCheckpoint(cp *Checkpoint, pub ed25519.PublicKey) bool {
	if len(pub) != ed25519.PublicKeySize || len(cp.Signature) != ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(pub, CheckpointMessage(cp.Seq, cp.Hash, cp.Time), cp.Signature)
}

// Signer signs checkpoints with the install's Ed25519 key.
type Signer struct {
	key ed25519.PrivateKey
}

// NewSigner returns a signer for key.
func NewSigner(key ed25519.PrivateKey) (*Signer, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, tokenward.Errorf(tokenward.EINVALID, "audit: signing key has %d bytes; want %d", len(key), ed25519.PrivateKeySize)
	}
	return &Signer{key: key}, nil
}

// PublicKey returns the key that verifies this signer's checkpoints.
func (s *Signer) PublicKey() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// Sign returns a checkpoint over (seq, hash, t); t is kept to microseconds
// like entry times so it survives any store.
func (s *Signer) Sign(seq int64, hash string, t time.Time) *Checkpoint {
	t = t.Round(0).UTC().Truncate(time.Microsecond)
	return &Checkpoint{
		Seq:       seq,
		Hash:      hash,
		Time:      t,
		KeyID:     KeyID(s.PublicKey()),
		Signature: ed25519.Sign(s.key, CheckpointMessage(seq, hash, t)),
	}
}

const (
	privatePEMType = "PRIVATE KEY" // PKCS #8
	publicPEMType  = "PUBLIC KEY"  // PKIX
)

// LoadOrCreateKey reads the Ed25519 private key (PKCS #8 PEM) at path, or,
// if no file exists there, creates one with mode 0600. It refuses a key file
// that group or others can read or write: the key is what makes checkpoints
// unforgeable.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	key, err := LoadKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	_, key, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("audit: generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("audit: encode signing key: %w", err)
	}
	// O_EXCL: two servers starting at once must not overwrite each other's key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return LoadKey(path)
		}
		return nil, fmt.Errorf("audit: create signing key file: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: privatePEMType, Bytes: der}); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("audit: write signing key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: sync signing key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("audit: close signing key file: %w", err)
	}
	return key, nil
}

// LoadKey reads the Ed25519 private key at path (PKCS #8 PEM, mode 0600 or
// stricter). A missing file gives an error matching fs.ErrNotExist.
func LoadKey(path string) (ed25519.PrivateKey, error) {
	data, err := tokenward.ReadPrivateFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: signing key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != privatePEMType {
		return nil, tokenward.Errorf(tokenward.EINVALID, "audit: signing key file %s is not a PEM %q block", path, privatePEMType)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		// The parse error names no key material; keep it generic anyway.
		return nil, tokenward.Errorf(tokenward.EINVALID, "audit: signing key file %s does not hold a PKCS #8 key", path)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, tokenward.Errorf(tokenward.EINVALID, "audit: signing key file %s holds a %T; want an Ed25519 key", path, k)
	}
	return key, nil
}

// MarshalPublicKey returns pub as PKIX PEM, the form `audit verify` takes
// and operators keep away from the server.
func MarshalPublicKey(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("audit: encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: publicPEMType, Bytes: der}), nil
}

// ParsePublicKey parses a PKIX PEM Ed25519 public key.
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != publicPEMType {
		return nil, tokenward.Errorf(tokenward.EINVALID, "audit: public key is not a PEM %q block", publicPEMType)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, tokenward.Errorf(tokenward.EINVALID, "audit: public key: %v", err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, tokenward.Errorf(tokenward.EINVALID, "audit: public key is a %T; want Ed25519", k)
	}
	return pub, nil
}
