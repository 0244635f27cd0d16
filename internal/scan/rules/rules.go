// Package rules holds tokenward's built-in leak-scanning rule set: TOML files
// in the gitleaks format, one per category, each rule carrying its own
// must-match (tps) and must-not-match (fps) samples.
package rules

import "embed"

// FS holds the built-in rule files (*.toml at its root), for scan.LoadFS.
//
//go:embed *.toml
var FS embed.FS
