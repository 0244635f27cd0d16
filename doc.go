// Package tokenward holds the domain of tokenward: projects, environments,
// secrets, access tokens, grants and the errors every layer shares. It
// imports only the standard library; storage, encryption and transport live
// in packages named after what they depend on.
package tokenward
