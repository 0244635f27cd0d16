package main

// The client build (go build -tags tokenward_client, bin/tokenward of
// `make build`) leaves out the server's libraries — SQLite, PostgreSQL,
// metrics, the console — so that a pipeline's `tokenward secret get`
// starts like a small Go program (docs/benchmarks.md, "CLI start-up").
// The top-level commands that need them are forwarded: the client
// replaces itself (syscall.Exec: same pid, streams, environment and
// arguments) with the full build, tokenward-server, found beside it or in
// PATH (forward_client.go). The default build has every command itself.

// serverBinaryName is the full build's name beside the client.
const serverBinaryName = "tokenward-server"

// forwardedCommands are the top-level commands the client build forwards,
// with their Short text for the client's help. TestForwardedCommands keeps
// each the full build's; a command neither built into the client nor
// listed here does not compile in the client build (its builder is
// undefined).
var forwardedCommands = map[string]string{
	"init":    "Create a data directory, its master key and the first admin token",
	"server":  "Serve the API (SQLite in the data directory)",
	"migrate": "Copy an install between SQLite and PostgreSQL, sealed values as they are",
	"bench":   "Load a server with a mix of API operations and measure it",
}
