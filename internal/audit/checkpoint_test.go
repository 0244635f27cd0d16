package audit

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenward/tokenward"
)

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.key")
	if _, err := LoadKey(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("got %v; want fs.ErrNotExist before creation", err)
	}
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("got mode %04o; want 0600", fi.Mode().Perm())
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(k2) {
		t.Error("got a different key on reload; want the stored one")
	}
	// A checkpoint signed with the loaded key verifies with its public key.
	s, err := NewSigner(k2)
	if err != nil {
		t.Fatal(err)
	}
	cp := s.Sign(3, GenesisHash, testEpoch)
	if !VerifyCheckpoint(cp, k1.Public().(ed25519.PublicKey)) {
		t.Error("got an invalid checkpoint signature; want valid")
	}
	if cp.KeyID != KeyID(s.PublicKey()) || len(cp.KeyID) != 16 {
		t.Errorf("got key id %q; want the 16-hex-digit id of the public key", cp.KeyID)
	}
}

func TestLoadKeyRejects(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.key")
	if _, err := LoadOrCreateKey(good); err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := MarshalPublicKey(mustKey(t, 1).Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"readable by others", pemBytes, 0o644},
		{"not PEM", []byte("hello"), 0o600},
		{"public key instead", pub, 0o600},
		{"garbage in PEM", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			if err := os.WriteFile(path, tt.data, tt.mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(path, tt.mode)
			_, err := LoadKey(path)
			if tokenward.ErrorCode(err) != tokenward.EINVALID {
				t.Fatalf("got %v; want EINVALID", err)
			}
			// The error must never carry key material.
			if bytes.Contains([]byte(err.Error()), []byte("BEGIN")) || strings.Contains(err.Error(), string(pemBytes[30:60])) {
				t.Errorf("got error %q; want no key material in it", err)
			}
		})
	}
}

func TestPublicKeyRoundTrip(t *testing.T) {
	pub := mustKey(t, 7).Public().(ed25519.PublicKey)
	b, err := MarshalPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParsePublicKey(b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(pub) {
		t.Error("got another key after a round trip; want the same")
	}
	if _, err := ParsePublicKey([]byte("nope")); tokenward.ErrorCode(err) != tokenward.EINVALID {
		t.Errorf("got %v; want EINVALID", err)
	}
}
