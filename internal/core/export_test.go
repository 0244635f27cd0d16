package core

// SetCascadeLimit lowers the number of descendants a cascading revocation
// may revoke, so a test need not mint ten thousand tokens.
func SetCascadeLimit(c *Core, n int) { c.cascadeLimit = n }
