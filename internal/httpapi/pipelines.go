package httpapi

import (
	"net/http"
	"strconv"

	"github.com/tokenward/tokenward/internal/api"
)

// pipelinesRoutes serve what `tokenward check` needs beyond the core API.
func (s *Server) pipelinesRoutes() []route {
	return []route{
		{method: "GET", pattern: "/v1/projects/{project}/duplicates", action: "project.duplicates", public: false, handle: s.duplicates},
	}
}

func (s *Server) duplicates(c *call) (int, any, error) {
	project := c.r.PathValue("project")
	c.resource = project
	groups, err := s.Core.Duplicates(c.r.Context(), c.tok, project)
	if err != nil {
		return 0, nil, err
	}
	c.meta = map[string]string{"groups": strconv.Itoa(len(groups))}
	return http.StatusOK, &api.DuplicatesResponse{Project: project, Groups: groups}, nil
}
