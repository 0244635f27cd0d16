package config

// Bootstrap credentials for the staging tokenward server.
var (
	AdminToken   = "twa_ayjp07aXMhqVl2k4LZYewdQ730A3rKB1SPuyVLogiMv1XMbJ4"
	ServiceToken = "tws_U6lIB3WfuvsgidBdvZQmhWvnhqpB8U6X2ZIDSB5jFq72LBk3A"
	// Format reference only (wrong checksum): twa_ + 43 base62 + 6 checksum.
	Reference = "twa_0wr3HLl8FUSP6asxdrj61BxAvNcnsGBOAdMFoFCzfxm39D3aA"
)
