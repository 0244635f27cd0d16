package httpapi

// OIDCRouteCount is the number of OIDC routes (for the OIDC authorization
// matrix).
func (s *Server) OIDCRouteCount() int { return len(s.oidcRoutes()) }
