package seal

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/tokenward/tokenward"
)

// keyFilePrefix labels a key file so a wrong file is recognised as such.
const keyFilePrefix = "tokenward-master-key-v1:"

// EncodeKey returns the text form of an unseal key, as written to a key file
// and accepted in TOKENWARD_MASTER_KEY.
func EncodeKey(key []byte) string {
	return keyFilePrefix + base64.RawURLEncoding.EncodeToString(key)
}

// ParseKey parses the text form of an unseal key. Its errors never echo
// the text.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, keyFilePrefix)
	if !ok {
		return nil, errors.New("master key: not a tokenward master key (want tokenward-master-key-v1:...)")
	}
	key, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || len(key) != KeySize {
		return nil, errors.New("master key: malformed (want 32 bytes in unpadded URL-safe base64)")
	}
	return key, nil
}

// WriteKeyFile creates path with a new unseal key, mode 0600. It never
// overwrites an existing file.
func WriteKeyFile(path string) ([]byte, error) {
	key := NewKey()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("master key file: %w", err)
	}
	if _, err := f.WriteString(EncodeKey(key) + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("master key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("master key file: %w", err)
	}
	return key, f.Close()
}

// ReadKeyFile reads an unseal key from path. It refuses a file that others
// can read.
func ReadKeyFile(path string) ([]byte, error) {
	b, err := tokenward.ReadPrivateFile(path)
	if err != nil {
		return nil, fmt.Errorf("master key file: %w", err)
	}
	key, err := ParseKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}
