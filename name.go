package tokenward

import "strings"

// MaxNameLen bounds every project, environment and secret name.
const MaxNameLen = 63

// ValidateProjectName checks that s is a lowercase DNS label, the form of
// project and environment names.
func ValidateProjectName(s string) error { return validateLabel("project", s) }

// ValidateEnvName checks that s is a lowercase DNS label.
func ValidateEnvName(s string) error { return validateLabel("environment", s) }

// ValidateRouteName checks that s is a lowercase DNS label, the form of
// gateway route names.
func ValidateRouteName(s string) error { return validateLabel("route", s) }

func validateLabel(kind, s string) error {
	if s == "" {
		return Errorf(EINVALID, "%s name is empty", kind)
	}
	if len(s) > MaxNameLen {
		return Errorf(EINVALID, "%s name is longer than %d characters", kind, MaxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(s)-1:
		default:
			return Errorf(EINVALID, "%s name %q is not a lowercase DNS label (a-z, 0-9, inner '-')", kind, Printable(s))
		}
	}
	return nil
}

// MaxSecretNameLen bounds secret names, which are environment variable names.
const MaxSecretNameLen = 255

// ValidateSecretName checks that s is a valid environment variable name:
// [A-Za-z_][A-Za-z0-9_]*.
func ValidateSecretName(s string) error {
	if s == "" {
		return Errorf(EINVALID, "secret name is empty")
	}
	if len(s) > MaxSecretNameLen {
		return Errorf(EINVALID, "secret name is longer than %d characters", MaxSecretNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c == '_':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return Errorf(EINVALID, "secret name %q is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)", Printable(s))
		}
	}
	return nil
}

// ValidatePathSegment checks that s, a name of kind (e.g. "token name"),
// can travel as one segment of a request path: not empty, "." or "..",
// which a path cleaner would remove, and without '/'. Names with a form of
// their own (ValidateProjectName and the like) need no such check: they
// allow none of these.
func ValidatePathSegment(kind, s string) error {
	if s == "" {
		return Errorf(EINVALID, "%s is empty", kind)
	}
	if s == "." || s == ".." || strings.Contains(s, "/") {
		return Errorf(EINVALID, "%s %q is not allowed in a path (no . or .., no '/')", kind, Printable(s))
	}
	return nil
}

// Printable shortens s to 64 bytes and replaces all but printable ASCII
// with '?', so outside input echoed in an error or log stays readable and
// bounded.
func Printable(s string) string {
	const max = 64
	b := make([]byte, 0, min(len(s), max))
	for i := 0; i < len(s) && len(b) < max; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			b = append(b, c)
		} else {
			b = append(b, '?')
		}
	}
	if len(s) > max {
		return string(b) + "..."
	}
	return string(b)
}
