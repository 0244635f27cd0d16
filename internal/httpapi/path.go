package httpapi

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
)

// pathKind names what a route's wildcard holds, as the client names it:
// by the pattern up to the wildcard, else by the wildcard. A switch, not a
// package-level map: building a map at init costs every process's start
// (TestStartupDoesNoEagerWork), and its allocations vary with the map's
// hash seed.
func pathKind(key string) (api.Kind, bool) {
	switch key {
	case "{project}":
		return api.KindProject, true
	case "{env}":
		return api.KindEnv, true
	case "{name}":
		return api.KindSecret, true
	case "{route}":
		return api.KindRoute, true
	case "/v1/bindings/{name}":
		return api.KindBinding, true
	case "/v1/tokens/{id}":
		return api.KindToken, true
	case "/v1/anomalies/{id}":
		return api.KindAnomaly, true
	case "/v1/rotation/bulk/{id}":
		return api.KindBulkRotation, true
	case "/v1/leases/{id}":
		return api.KindLease, true
	case "/v1/gateway/db/routes/{name}": // a database gateway route's name, as the client checks it
		return api.KindDBRoute, true
	}
	return "", false
}

// rawPathError refuses a path under /v1/ with a segment the mux would
// clean away or redirect (empty, "." or "..", percent-encoded or not) or
// that holds an encoded '/', before the mux sees it: such a path would
// otherwise reach another route, or none. The error is api.CheckName's for
// the name the segment stands in for, the one the client gives before it
// sends such a name.
func (s *Server) rawPathError(r *http.Request) error {
	raw := r.URL.EscapedPath()
	if !strings.HasPrefix(raw, "/v1/") {
		return nil
	}
	i := 0
	for seg := range strings.SplitSeq(raw[1:], "/") { // no slice: this runs on every request
		v := seg
		if strings.IndexByte(seg, '%') >= 0 {
			if u, err := url.PathUnescape(seg); err == nil {
				v = u
			}
		}
		if v != "" && v != "." && v != ".." && !strings.Contains(v, "/") {
			i++
			continue
		}
		if kind, ok := s.pathKind(strings.Split(raw[1:], "/"), i); ok {
			return api.CheckName(kind, v)
		}
		return tokenward.ValidatePathSegment("path segment", v)
	}
	return nil
}

// pathKind finds a route that has a wildcard at segment i and matches
// the other segments, and returns the kind of name that wildcard holds.
func (s *Server) pathKind(segs []string, i int) (api.Kind, bool) {
	for _, rt := range s.routes {
		pat := strings.Split(rt.pattern[1:], "/")
		if len(pat) != len(segs) || !isWildcard(pat[i]) {
			continue
		}
		match := true
		for j, p := range pat {
			if j != i && !isWildcard(p) && p != segs[j] {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		if kind, ok := pathKind("/" + strings.Join(pat[:i+1], "/")); ok {
			return kind, true
		}
		return pathKind(pat[i])
	}
	return "", false
}

func isWildcard(seg string) bool { return strings.HasPrefix(seg, "{") }
