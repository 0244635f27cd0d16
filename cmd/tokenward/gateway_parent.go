package main

import "github.com/spf13/cobra"

// newGatewayParentCommand is a minimal `tokenward gateway` holding only the
// database routes, for this branch; the HTTP gateway's command of the same
// name takes `db` under it when the two meet.
func (m *Main) newGatewayParentCommand() *cobra.Command {
	return group("gateway", "Manage the credential-injecting gateway", m.newGatewayDBCmd())
}
