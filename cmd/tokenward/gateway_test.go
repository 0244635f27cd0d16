//go:build !tokenward_client

package main

import (
	"context"
	"slices"
	"testing"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
)

type routeTable map[string]string // name → upstream

func (t routeTable) GatewayRoute(_ context.Context, name string) (*api.GatewayRoute, error) {
	up, ok := t[name]
	if !ok {
		return nil, tokenward.Errorf(tokenward.ENOTFOUND, "route %s not found", name)
	}
	return &api.GatewayRoute{Name: name, Upstream: up}, nil
}

// TestGatewayEnv: run --gateway sets each route's URL, and the variables
// of the tools of a known API when the route's upstream is that API.
func TestGatewayEnv(t *testing.T) {
	routes := routeTable{"github": "https://api.github.com", "openai": "https://api.openai.com/v1", "lab": "https://gitlab.com/api/v4", "other": "https://api.example.com", "oai-root": "https://api.openai.com"}
	const addr, tok = "https://tw.example:8750", "twj_JobToken"
	tests := []struct {
		route string
		want  []string
	}{
		{"github", []string{"TOKENWARD_GATEWAY_GITHUB_URL=" + addr + "/gw/github", "GITHUB_API_URL=" + addr + "/gw/github", "GITHUB_TOKEN=" + tok, "GH_TOKEN=" + tok}},
		{"openai", []string{"TOKENWARD_GATEWAY_OPENAI_URL=" + addr + "/gw/openai", "OPENAI_BASE_URL=" + addr + "/gw/openai", "OPENAI_API_KEY=" + tok}},
		{"lab", []string{"TOKENWARD_GATEWAY_LAB_URL=" + addr + "/gw/lab", "CI_API_V4_URL=" + addr + "/gw/lab", "GITLAB_TOKEN=" + tok, "CI_JOB_TOKEN=" + tok}},
		{"other", []string{"TOKENWARD_GATEWAY_OTHER_URL=" + addr + "/gw/other"}},
		{"oai-root", []string{"TOKENWARD_GATEWAY_OAI_ROOT_URL=" + addr + "/gw/oai-root"}}, // the SDK wants .../v1
	}
	for _, tt := range tests {
		got, err := gatewayEnv(context.Background(), routes, addr+"/", tok, []string{tt.route})
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %q, %v; want %q", tt.route, got, err, tt.want)
		}
	}
	if _, err := gatewayEnv(context.Background(), routes, addr, tok, []string{"nosuch"}); tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
		t.Errorf("unknown route: got %v; want ENOTFOUND", err)
	}
	if _, err := gatewayEnv(context.Background(), routes, addr, tok, []string{"Bad/"}); err == nil {
		t.Error("bad route name: got nil; want a usage error")
	}
}
