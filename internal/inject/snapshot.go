package inject

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/tokenward/tokenward/internal/seal"
)

// Snapshot is the last successful fetch, kept encrypted on disk for
// --fallback so a run can go on while the server cannot be reached.
type Snapshot struct {
	FetchedAt time.Time         `json:"fetched_at"`
	Envs      []string          `json:"environments"` // the --env list it was fetched for, in order
	Values    map[string]string `json:"values"`
}

// Errors LoadSnapshot returns (wrapped); callers branch on them with errors.Is.
var (
	ErrSnapshotMissing    = errors.New("no fallback snapshot")
	ErrSnapshotWrongToken = errors.New("fallback snapshot was written with a different token")
	ErrSnapshotCorrupt    = errors.New("fallback snapshot is corrupt or was tampered with")
	ErrSnapshotStale      = errors.New("fallback snapshot is too old")
)

// File layout: magic, version, salt, token check, nonce, AES-256-GCM
// ciphertext of the JSON Snapshot. Everything before the ciphertext is the
// associated data, so no header byte can change unnoticed.
const (
	snapMagic    = "TWSNAP"
	snapVersion  = 1
	snapSaltLen  = 32
	snapCheckLen = 16
	snapHeadLen  = len(snapMagic) + 1 + snapSaltLen + snapCheckLen
	// snapMaxSkew tolerates a snapshot dated slightly in the future (clock
	// adjustments between runs).
	snapMaxSkew = 5 * time.Minute
)

// snapshotKeys derives the encryption key and a token check value from the
// token with HKDF-SHA256 under the file's random salt. The check value lets
// LoadSnapshot tell a wrong token from a damaged file; it reveals nothing
// about the key (a separate HKDF output).
func snapshotKeys(token string, salt []byte) (key, check []byte, err error) {
	key, err = hkdf.Key(sha256.New, []byte(token), salt, "tokenward fallback snapshot v1 aes-256-gcm key", 32)
	if err != nil {
		return nil, nil, err
	}
	check, err = hkdf.Key(sha256.New, []byte(token), salt, "tokenward fallback snapshot v1 token check", snapCheckLen)
	return key, check, err
}

// SaveSnapshot encrypts values, fetched for envs at now, under a key derived
// from token and writes them to path atomically with mode 0600.
func SaveSnapshot(path, token string, envs []string, values map[string]string, now time.Time) error {
	if token == "" {
		return errors.New("save snapshot: empty token")
	}
	plain, err := json.Marshal(Snapshot{FetchedAt: now.UTC(), Envs: envs, Values: values})
	if err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	head := make([]byte, snapHeadLen)
	copy(head, snapMagic)
	head[len(snapMagic)] = snapVersion
	salt := head[len(snapMagic)+1 : len(snapMagic)+1+snapSaltLen]
	rand.Read(salt)
	key, check, err := snapshotKeys(token, salt)
	if err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	copy(head[len(snapMagic)+1+snapSaltLen:], check)
	sealed, err := seal.SealBytes(key, plain, head)
	clear(plain)
	if err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	return WriteFileAtomic(path, append(head, sealed...))
}

// LoadSnapshot reads the snapshot at path and returns it if token opens it
// and it is at most maxAge old at now. The caller must still check that
// Envs is the list it asks for.
func LoadSnapshot(path, token string, maxAge time.Duration, now time.Time) (*Snapshot, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load snapshot %s: %w", path, ErrSnapshotMissing)
	}
	if err != nil {
		return nil, fmt.Errorf("load snapshot: %w", err)
	}
	if len(data) < snapHeadLen+12+16 || !bytes.HasPrefix(data, []byte(snapMagic)) {
		return nil, fmt.Errorf("load snapshot %s: not a tokenward snapshot: %w", path, ErrSnapshotCorrupt)
	}
	if v := data[len(snapMagic)]; v != snapVersion {
		return nil, fmt.Errorf("load snapshot %s: unknown version %d: %w", path, v, ErrSnapshotCorrupt)
	}
	head := data[:snapHeadLen]
	salt := head[len(snapMagic)+1 : len(snapMagic)+1+snapSaltLen]
	key, check, err := snapshotKeys(token, salt)
	if err != nil {
		return nil, fmt.Errorf("load snapshot: %w", err)
	}
	if subtle.ConstantTimeCompare(check, head[len(snapMagic)+1+snapSaltLen:]) != 1 {
		return nil, fmt.Errorf("load snapshot %s: %w", path, ErrSnapshotWrongToken)
	}
	plain, err := seal.OpenBytes(key, data[snapHeadLen:], head)
	if err != nil {
		return nil, fmt.Errorf("load snapshot %s: %w", path, ErrSnapshotCorrupt)
	}
	defer clear(plain)
	var s Snapshot
	if err := json.Unmarshal(plain, &s); err != nil || s.FetchedAt.IsZero() {
		return nil, fmt.Errorf("load snapshot %s: bad contents: %w", path, ErrSnapshotCorrupt)
	}
	age := now.Sub(s.FetchedAt)
	if age > maxAge {
		return nil, fmt.Errorf("load snapshot %s: fetched %s ago, more than the allowed %s: %w", path, age.Round(time.Second), maxAge, ErrSnapshotStale)
	}
	if age < -snapMaxSkew {
		return nil, fmt.Errorf("load snapshot %s: dated %s in the future: %w", path, (-age).Round(time.Second), ErrSnapshotStale)
	}
	return &s, nil
}
