package api

import "time"

// ClaimCondition is a claim condition of a trust binding. Op is exact,
// glob or one_of; empty, the server derives it from Values as the
// manifest's pipelines do (one value: exact, or glob when it holds '*';
// several: one_of).
type ClaimCondition struct {
	Claim  string   `json:"claim"`
	Op     string   `json:"op,omitempty"`
	Values []string `json:"values"`
}

// CreateBindingRequest is the body of POST /v1/bindings.
type CreateBindingRequest struct {
	Name      string           `json:"name"`
	Preset    string           `json:"preset,omitempty"` // github or gitlab: fills the issuer
	Issuer    string           `json:"issuer,omitempty"`
	Audiences []string         `json:"audiences"`
	Claims    []ClaimCondition `json:"claims"`
	Grants    []string         `json:"grants"`             // ACTION:PROJECT/ENV/NAME
	TTL       string           `json:"ttl"`                // Go duration, e.g. "15m"
	Disabled  bool             `json:"disabled,omitempty"` // create it disabled
}

// Binding is a trust binding in API answers. TTL is a Go duration.
type Binding struct {
	Name      string           `json:"name"`
	Issuer    string           `json:"issuer"`
	Audiences []string         `json:"audiences"`
	Claims    []ClaimCondition `json:"claims"`
	Grants    []string         `json:"grants"`
	TTL       string           `json:"ttl"`
	Enabled   bool             `json:"enabled"`
	CreatedAt time.Time        `json:"created_at,omitzero"`
	UpdatedAt time.Time        `json:"updated_at,omitzero"`
	CreatedBy string           `json:"created_by,omitempty"`
	// Warnings (on create): advice such as a condition on a claim the
	// preset's issuer is not known to issue.
	Warnings []string `json:"warnings,omitempty"`
}

// BindingList is the answer of GET /v1/bindings.
type BindingList struct {
	Bindings []*Binding `json:"bindings"`
}

// OIDCLoginRequest is the body of POST /v1/auth/oidc/login; the answer is
// a CreateTokenResponse.
type OIDCLoginRequest struct {
	Binding string `json:"binding,omitempty"` // "": the single binding that matches
	JWT     string `json:"jwt"`               // the CI job's identity token
}
