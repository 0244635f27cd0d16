package api

import "time"

// GatewayRoute is a gateway route in requests (the body of POST
// /v1/gateway/routes) and answers. Timeout is a Go duration ("" for the
// gateway's default). It holds secret paths, never values.
type GatewayRoute struct {
	Name       string    `json:"name"`
	Upstream   string    `json:"upstream"`
	Secret     string    `json:"secret"`
	UserSecret string    `json:"user_secret,omitempty"`
	Inject     string    `json:"inject"`
	Allow      []string  `json:"allow"`
	Rate       string    `json:"rate,omitempty"`
	AllowNets  []string  `json:"allow_nets,omitempty"`
	CABundle   string    `json:"ca_bundle,omitempty"`
	Timeout    string    `json:"timeout,omitempty"`
	CreatedAt  time.Time `json:"created_at,omitzero"`
	CreatedBy  string    `json:"created_by,omitempty"`
}

// GatewayRouteList is the answer of GET /v1/gateway/routes.
type GatewayRouteList struct {
	Routes []*GatewayRoute `json:"routes"`
}
