package tokenward

import (
	"errors"
	"fmt"
	"strings"
)

// Error codes. Each maps to exactly one HTTP status in internal/httpapi.
const (
	EINVALID      = "invalid"      // bad input: 400
	EUNAUTHORIZED = "unauthorized" // no token, or a bad/revoked/expired one: 401
	EFORBIDDEN    = "forbidden"    // authenticated, but not granted: 403
	ENOTFOUND     = "not_found"    // 404
	ECONFLICT     = "conflict"     // 409
	ETOOLARGE     = "too_large"    // 413
	EUNAVAILABLE  = "unavailable"  // 503
	EINTERNAL     = "internal"     // 500; never shows its cause to a client
	EUNSUPPORTED  = "unsupported"  // 415: wrong content type
	ERATELIMITED  = "rate_limited" // 429
	ENOTALLOWED   = "not_allowed"  // 405
	ECANCELED     = "canceled"     // 499 (nginx's "client closed request"): the client went away mid-request
)

// Error is the one error type the application returns to callers it does not
// trust. Message is safe to show to a client: it never holds a secret value,
// a token or a key.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("tokenward: %s: %s", e.Code, e.Message) }

// Errorf returns an *Error with the given code and a formatted message.
// Never format a secret value or a token into it.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for
// any other error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil { // before asError: nothing allocated for the usual nil
		return ""
	}
	if e := asError(err); e != nil {
		return e.Code
	}
	return EINTERNAL
}

// asError is the first *Error in err's chain, or nil. It is apart from
// its callers because the variable errors.As fills escapes: declared in
// them, it was allocated on every call, nil errors included (five times
// a secret read).
func asError(err error) *Error {
	if e, ok := err.(*Error); ok {
		return e
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// ErrorMessage returns the client-safe message of err: the message of its
// *Error, or a generic text for anything else.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	if e := asError(err); e != nil {
		return e.Message
	}
	return "internal error"
}

// VersionConflict is a write's refusal when the secret at path is at
// version cur, not the want its writer expected (a check-and-set).
func VersionConflict(path string, cur, want int) *Error {
	return Errorf(ECONFLICT, "secret %s is at version %d, not %d", path, cur, want)
}

// IsVersionConflict reports whether err is a VersionConflict (the Vault
// dialect words it as Vault words a failed check-and-set).
func IsVersionConflict(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == ECONFLICT && strings.HasPrefix(e.Message, "secret ") && strings.Contains(e.Message, " is at version ")
}
