package tokenward

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Project groups environments, which group secrets.
type Project struct {
	Name      string    `json:"name"`
	Envs      []string  `json:"environments"`
	CreatedAt time.Time `json:"created_at"`
}

// Secret is a named secret's metadata. Its value lives only in its versions,
// sealed.
type Secret struct {
	Project     string    `json:"project"`
	Env         string    `json:"environment"`
	Name        string    `json:"name"`
	Owner       string    `json:"owner,omitempty"`
	Description string    `json:"description,omitempty"`
	Tags        []string  `json:"tags,omitempty"`
	ExpiresAt   time.Time `json:"expires_at,omitzero"` // the upstream credential's own expiry
	Version     int       `json:"version"`             // the current version
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	UpdatedBy   string    `json:"updated_by,omitempty"`
}

// Path returns project/env/name.
func (s *Secret) Path() string { return s.Project + "/" + s.Env + "/" + s.Name }

// SecretVersion is one immutable version of a secret.
type SecretVersion struct {
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
	// Ciphertext is the sealed value; it never leaves the server.
	Ciphertext []byte `json:"-"`
}

// DataKey is a project's data-encryption key, wrapped by a master key.
type DataKey struct {
	Project string
	Version int    // per project, starting at 1; travels in each ciphertext
	Wrapped []byte // sealed by the master keyring; names its master key id
}

// Limits on metadata.
const (
	MaxOwnerLen       = 128
	MaxDescriptionLen = 1024
	MaxTags           = 32
	MaxTagLen         = 64
)

// ValidateSecretMeta checks a secret's metadata fields, for every store
// alike: their text is what PostgreSQL's text holds, so SQLite is given
// nothing PostgreSQL would refuse.
func ValidateSecretMeta(s *Secret) error {
	if len(s.Owner) > MaxOwnerLen {
		return Errorf(EINVALID, "owner is longer than %d characters", MaxOwnerLen)
	}
	if p := textProblem(s.Owner); p != "" {
		return Errorf(EINVALID, "owner %s", p)
	}
	if len(s.Description) > MaxDescriptionLen {
		return Errorf(EINVALID, "description is longer than %d characters", MaxDescriptionLen)
	}
	if p := textProblem(s.Description); p != "" {
		return Errorf(EINVALID, "description %s", p)
	}
	if len(s.Tags) > MaxTags {
		return Errorf(EINVALID, "more than %d tags", MaxTags)
	}
	for _, t := range s.Tags {
		if t == "" || len(t) > MaxTagLen {
			return Errorf(EINVALID, "tag %q: want 1 to %d characters", Printable(t), MaxTagLen)
		}
		if p := textProblem(t); p != "" {
			return Errorf(EINVALID, "tag %q %s", Printable(t), p)
		}
	}
	return nil
}

// textProblem says what PostgreSQL's text would refuse in s, a NUL byte
// or bytes that are not UTF-8, or "" when it holds s.
func textProblem(s string) string {
	switch {
	case strings.IndexByte(s, 0) >= 0:
		return "has a NUL byte"
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	}
	return ""
}
