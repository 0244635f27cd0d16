package main

// oidcLoginOptions says how to obtain a just-in-time token from the CI job's
// OIDC identity token (issue 4). `tokenward login --oidc` and
// `tokenward run --oidc` share it.
type oidcLoginOptions struct {
	Binding  string // binding name; "" lets the server pick the one that matches
	Audience string // audience to request from the CI runner (default "tokenward")
	JWTEnv   string // variable holding the identity token (GitLab); default TOKENWARD_ID_TOKEN
	JWTFile  string // file holding the identity token
}

// oidcLogin (login.go) exchanges the CI job's identity token for a twj_
// token at the server named by TOKENWARD_ADDR.
