package httpapi

import (
	"encoding/base64"
	"net/http"
	"strconv"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/core"
)

// scanRoutes serve server-assisted leak scanning: the keyed fingerprints
// of the managed values a token may read (internal/core scan.go).
func (s *Server) scanRoutes() []route {
	return []route{
		{method: "POST", pattern: "/v1/scan/fingerprints", action: "scan.fingerprints", handle: s.scanFingerprints},
	}
}

func (s *Server) scanFingerprints(c *call) (int, any, error) {
	var req api.ScanFingerprintsRequest
	if err := decode(c.r, &req); err != nil {
		return 0, nil, err
	}
	key, err := base64.StdEncoding.DecodeString(req.Key)
	if err != nil || len(key) != core.ScanKeySize {
		return 0, nil, tokenward.Errorf(tokenward.EINVALID, "key must be %d random bytes in standard base64", core.ScanKeySize)
	}
	defer clear(key)
	fps, err := s.Core.ManagedFingerprints(c.r.Context(), c.tok, key)
	if err != nil {
		return 0, nil, err
	}
	out := api.ScanFingerprintsResponse{Fingerprints: make([]api.Fingerprint, len(fps))}
	for i, f := range fps {
		out.Fingerprints[i] = api.Fingerprint(f)
	}
	c.meta = map[string]string{"fingerprints": strconv.Itoa(len(fps))}
	return http.StatusOK, out, nil
}
