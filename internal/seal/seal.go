// Package seal is tokenward's envelope encryption: an unseal key (from a key
// file or the environment) opens a keyring of master keys; master keys wrap
// per-project data keys; data keys seal values with AES-256-GCM whose
// associated data binds each ciphertext to the record it belongs to.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// KeySize is the size of every key: unseal, master and data keys.
const KeySize = 32

// formatV1 is the version byte of every ciphertext this package writes.
const formatV1 = 1

const (
	nonceSize  = 12
	headerSize = 1 + 4 // version byte, key id (big endian)
	overhead   = headerSize + nonceSize + 16
)

// Errors callers branch on.
var (
	// ErrWrongKey means a ciphertext did not open: the key is not the one it
	// was sealed with, or the ciphertext or its associated data was altered.
	ErrWrongKey = errors.New("seal: message authentication failed (wrong key, or data altered or moved)")
	// ErrFormat means a ciphertext is not in a format this package writes.
	ErrFormat = errors.New("seal: malformed ciphertext")
)

// NewKey returns a fresh random key.
func NewKey() []byte {
	k := make([]byte, KeySize)
	if _, err := io.ReadFull(rand.Reader, k); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return k
}

// Seal encrypts plaintext under key, recording keyID in the output so the
// reader knows which key opens it. aad is authenticated, not stored.
// The output is: version byte | key id | nonce | AES-256-GCM(ciphertext+tag).
func Seal(key []byte, keyID uint32, plaintext, aad []byte) ([]byte, error) {
	c, err := NewCipher(key)
	if err != nil {
		return nil, err
	}
	return c.Seal(keyID, plaintext, aad)
}

// Open decrypts a ciphertext made by Seal with the same key and aad.
func Open(key, ciphertext, aad []byte) ([]byte, error) {
	if _, err := KeyID(ciphertext); err != nil {
		return nil, err
	}
	c, err := NewCipher(key)
	if err != nil {
		return nil, err
	}
	return c.Open(ciphertext, aad)
}

// Cipher is a key made ready to seal and open many values: its AES-256-GCM
// cipher is built once, not per value. Seal and Open through it are Seal
// and Open with its key, byte for byte. It is safe for concurrent use. It
// holds key material: keep it only where the key itself may be kept.
type Cipher struct {
	aead cipher.AEAD
}

// NewCipher returns a Cipher for key, which must be KeySize bytes.
func NewCipher(key []byte) (*Cipher, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	return &Cipher{aead: aead}, nil
}

// Seal is Seal with c's key.
func (c *Cipher) Seal(keyID uint32, plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, headerSize+nonceSize, overhead+len(plaintext))
	out[0] = formatV1
	binary.BigEndian.PutUint32(out[1:5], keyID)
	if _, err := io.ReadFull(rand.Reader, out[headerSize:]); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	// The header is authenticated too, so the key id cannot be swapped.
	return c.aead.Seal(out, out[headerSize:], plaintext, joinAAD(out[:headerSize], aad)), nil
}

// Open is Open with c's key.
func (c *Cipher) Open(ciphertext, aad []byte) ([]byte, error) {
	return c.OpenAppend(nil, ciphertext, aad)
}

// OpenAppend is Open appending the plaintext to dst, as cipher.AEAD's Open
// does, so many values can share one allocation (an environment fetch
// opens twenty). It returns dst extended by the plaintext; on error, nil.
func (c *Cipher) OpenAppend(dst, ciphertext, aad []byte) ([]byte, error) {
	if _, err := KeyID(ciphertext); err != nil {
		return nil, err
	}
	return c.open(dst, ciphertext, joinAAD(ciphertext[:headerSize], aad))
}

// open opens ciphertext, whose header KeyID checked, with joined, its
// header and the caller's associated data joined (joinAAD).
func (c *Cipher) open(dst, ciphertext, joined []byte) ([]byte, error) {
	nonce := ciphertext[headerSize : headerSize+nonceSize]
	pt, err := c.aead.Open(dst, nonce, ciphertext[headerSize+nonceSize:], joined)
	if err != nil {
		return nil, ErrWrongKey
	}
	return pt, nil
}

// PlaintextLen is the length of the plaintext ciphertext holds, from its
// length alone (0 for one too short to be a ciphertext).
func PlaintextLen(ciphertext []byte) int {
	return max(len(ciphertext)-overhead, 0)
}

// SealBytes encrypts plaintext under key with AES-256-GCM and returns the
// random nonce followed by the ciphertext and tag; aad is authenticated, not
// stored. It is for local files whose own header carries the format and key
// derivation (the fallback snapshot); records in the store use Seal.
func SealBytes(key, plaintext, aad []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, nonceSize, nonceSize+len(plaintext)+aead.Overhead())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, plaintext, aad), nil
}

// OpenBytes decrypts what SealBytes returned for the same key and aad.
func OpenBytes(key, sealed, aad []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < nonceSize+aead.Overhead() {
		return nil, ErrFormat
	}
	pt, err := aead.Open(nil, sealed[:nonceSize], sealed[nonceSize:], aad)
	if err != nil {
		return nil, ErrWrongKey
	}
	return pt, nil
}

// KeyID returns the id of the key a ciphertext was sealed with.
func KeyID(ciphertext []byte) (uint32, error) {
	if len(ciphertext) < overhead || ciphertext[0] != formatV1 {
		return 0, ErrFormat
	}
	return binary.BigEndian.Uint32(ciphertext[1:5]), nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("seal: key is %d bytes; want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// joinAAD prefixes aad with the ciphertext header and a length, so distinct
// (header, aad) pairs never collide.
func joinAAD(header, aad []byte) []byte {
	b := make([]byte, 0, len(header)+4+len(aad))
	b = append(b, header...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(aad))) // #nosec G115 -- AAD is a record identity, bounded by name limits
	return append(b, aad...)
}

// ValueAAD is the associated data of a secret value: it binds the ciphertext
// to its project, environment, name and version, so a ciphertext copied onto
// another row does not open.
func ValueAAD(project, env, name string, version int) []byte {
	return appendValueAAD(make([]byte, 0, 64), project, env, name, version)
}

const valueAADPrefix = "tokenward/value/v1\x00"

func appendValueAAD(b []byte, project, env, name string, version int) []byte {
	b = append(b, valueAADPrefix...)
	for _, s := range [...]string{project, env, name} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s))) // #nosec G115 -- names are bounded by name validation
		b = append(b, s...)
	}
	return binary.BigEndian.AppendUint64(b, uint64(version)) // #nosec G115 -- versions are positive
}

// ValueOpener opens secret values as Open with ValueAAD does, building
// each one's associated data in one buffer it keeps: an environment fetch
// opens twenty values, and the associated data was two allocations each.
// Not safe for concurrent use.
type ValueOpener struct {
	aad []byte
}

// Open is c.OpenAppend(dst, ciphertext, ValueAAD(project, env, name,
// version)).
func (o *ValueOpener) Open(c *Cipher, dst, ciphertext []byte, project, env, name string, version int) ([]byte, error) {
	if _, err := KeyID(ciphertext); err != nil {
		return nil, err
	}
	n := len(valueAADPrefix) + 3*4 + len(project) + len(env) + len(name) + 8
	b := append(o.aad[:0], ciphertext[:headerSize]...)
	b = binary.BigEndian.AppendUint32(b, uint32(n)) // #nosec G115 -- names are bounded by name validation
	b = appendValueAAD(b, project, env, name, version)
	o.aad = b
	return c.open(dst, ciphertext, b)
}

// dataKeyAAD binds a wrapped data key to its project and version.
func dataKeyAAD(project string, version int) []byte {
	b := append([]byte("tokenward/datakey/v1\x00"), project...)
	return binary.BigEndian.AppendUint64(append(b, 0), uint64(version)) // #nosec G115 -- versions are positive
}

var keyringAAD = []byte("tokenward/keyring/v1")

// Keyring is the set of master keys. The newest one wraps new data keys;
// older ones stay so anything wrapped before a rotation still opens.
type Keyring struct {
	current uint32
	keys    map[uint32][]byte
}

// NewKeyring returns a keyring with one fresh master key, id 1.
func NewKeyring() *Keyring {
	return &Keyring{current: 1, keys: map[uint32][]byte{1: NewKey()}}
}

// Current returns the id of the master key that wraps new data keys.
func (k *Keyring) Current() uint32 { return k.current }

// Rotate returns a copy of k with a new current master key.
func (k *Keyring) Rotate() *Keyring {
	n := &Keyring{current: k.current + 1, keys: make(map[uint32][]byte, len(k.keys)+1)}
	for id, key := range k.keys {
		n.keys[id] = key
	}
	n.keys[n.current] = NewKey()
	return n
}

type keyringJSON struct {
	Current uint32            `json:"current"`
	Keys    map[uint32][]byte `json:"keys"`
}

// SealKeyring encrypts the keyring under the unseal key for storage.
func SealKeyring(unsealKey []byte, k *Keyring) ([]byte, error) {
	pt, err := json.Marshal(keyringJSON{Current: k.current, Keys: k.keys})
	if err != nil {
		return nil, err
	}
	return Seal(unsealKey, 0, pt, keyringAAD)
}

// OpenKeyring decrypts a stored keyring. A wrong unseal key gives an error
// that says so, never garbage.
func OpenKeyring(unsealKey, sealed []byte) (*Keyring, error) {
	pt, err := Open(unsealKey, sealed, keyringAAD)
	if errors.Is(err, ErrWrongKey) {
		return nil, errors.New("seal: the master key does not open this install's keyring (wrong key file or TOKENWARD_MASTER_KEY?)")
	}
	if err != nil {
		return nil, err
	}
	var kj keyringJSON
	if err := json.Unmarshal(pt, &kj); err != nil {
		return nil, fmt.Errorf("seal: keyring: %w", err)
	}
	if kj.Keys[kj.Current] == nil {
		return nil, errors.New("seal: keyring has no current key")
	}
	for id, key := range kj.Keys {
		if len(key) != KeySize {
			return nil, fmt.Errorf("seal: keyring key %d has %d bytes", id, len(key))
		}
	}
	return &Keyring{current: kj.Current, keys: kj.Keys}, nil
}

// WrapDataKey seals a data key of project/version under the current master
// key.
func (k *Keyring) WrapDataKey(project string, version int, dataKey []byte) ([]byte, error) {
	return Seal(k.keys[k.current], k.current, dataKey, dataKeyAAD(project, version))
}

// UnwrapDataKey opens a wrapped data key with whichever master key wrapped it.
func (k *Keyring) UnwrapDataKey(project string, version int, wrapped []byte) ([]byte, error) {
	id, err := KeyID(wrapped)
	if err != nil {
		return nil, err
	}
	mk := k.keys[id]
	if mk == nil {
		return nil, fmt.Errorf("seal: data key of %s wrapped by unknown master key %d", project, id)
	}
	dk, err := Open(mk, wrapped, dataKeyAAD(project, version))
	if err != nil {
		return nil, fmt.Errorf("seal: data key of %s: %w", project, err)
	}
	return dk, nil
}
