package api

import (
	"time"

	"github.com/tokenward/tokenward"
)

// DynamicSourceRequest is the body of PUT /v1/dynamic/{project}/{env}/{name}.
// Durations are Go durations (15m, 2h). Config never holds a credential: the
// admin connection URL is named by path (admin_secret).
type DynamicSourceRequest struct {
	Kind      string            `json:"kind"`
	Config    map[string]string `json:"config,omitempty"`
	TTL       string            `json:"ttl"`
	MaxTTL    string            `json:"max_ttl,omitempty"`
	MaxLeases int               `json:"max_leases,omitempty"`
	// SkipCheck stores the source without first checking it against its
	// target (for postgres: connect with the admin URL and run its SQL for
	// a throwaway role in a transaction rolled back), for a target the
	// server cannot reach yet.
	SkipCheck bool `json:"skip_check,omitempty"`
}

// DynamicSource is a source as the API shows it.
type DynamicSource struct {
	Path      string            `json:"path"`
	Kind      string            `json:"kind"`
	Config    map[string]string `json:"config"`
	TTL       string            `json:"ttl"`
	MaxTTL    string            `json:"max_ttl"`
	MaxLeases int               `json:"max_leases,omitempty"`
	CreatedBy string            `json:"created_by"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// DynamicSourceList is the answer of GET /v1/dynamic.
type DynamicSourceList struct {
	Sources []*DynamicSource `json:"sources"`
}

// LeaseResponse is the answer of POST /v1/dynamic/{project}/{env}/{name}/lease:
// the lease and, once, its credential (value: a connection URL or JSON).
type LeaseResponse struct {
	Lease    *tokenward.Lease `json:"lease"`
	User     string           `json:"user"`
	Password string           `json:"password"` // #nosec G117 -- the credential is the answer to its holder, shown once
	Value    string           `json:"value"`
}

// LeaseList is the answer of GET /v1/leases and POST /v1/leases/revoke.
type LeaseList struct {
	Leases []*tokenward.Lease `json:"leases"`
}

// RenewLeaseRequest is the optional body of POST /v1/leases/{id}/renew:
// the new lifetime from now (default: the source's TTL).
type RenewLeaseRequest struct {
	Increment string `json:"increment,omitempty"`
}

// RenewedLease is the answer of POST /v1/leases/{id}/renew: the lease, and
// warnings such as a renewal capped at the lease's max TTL.
type RenewedLease struct {
	*tokenward.Lease
	Warnings []string `json:"warnings,omitempty"`
}

// RevokeLeasesRequest is the body of POST /v1/leases/revoke: every live
// lease under prefix that the token may manage.
type RevokeLeasesRequest struct {
	Prefix string `json:"prefix"`
}

// KindLease is a lease id in a request path.
const KindLease Kind = "lease id"
