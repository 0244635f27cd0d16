//go:build !tokenward_client

package main

// buildKind is the build `version` names: this one, the default, has every
// command itself; forward_client.go's is the client's.
const buildKind = "full"
