package httpapi

// CoreRouteCount is the number of core routes (for the core authorization
// matrix; each feature's matrix covers its own routes).
func (s *Server) CoreRouteCount() int { return len(s.coreRoutes()) }
