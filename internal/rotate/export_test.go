package rotate

// Internals lent to the external tests (package rotate_test), which run the
// machine over the real store: internal/sqlite and internal/core import this
// package, so those tests cannot live inside it.

// ErrCrashed is what the machine returns when SetCrash stopped it.
var ErrCrashed = errCrashed

// SetCrash makes m stop at the named points as if the process died there.
func (m *Machine) SetCrash(crash func(point string) bool) { m.crash = crash }

// PGCredential decodes a postgres rotator value in format (url or json)
// into the URL that logs in with it at base, and its password.
func PGCredential(value, format, base string) (login, password string, err error) {
	pc, err := parsePGConfig(map[string]string{"dsn_secret": "x", "role": "g", "url": base, "format": format})
	if err != nil {
		return "", "", err
	}
	c, err := pc.decode([]byte(value))
	if err != nil {
		return "", "", err
	}
	return pc.connURL(c), c.Password, nil
}
