//go:build race

package gateway_test

// raceEnabled: the race detector slows byte copying about tenfold, so the
// streaming test moves less under it.
const raceEnabled = true
