// Command printinfo prints buildinfo.Get as JSON, for the link-time test.
package main

import (
	"encoding/json"
	"os"

	"github.com/tokenward/tokenward/internal/buildinfo"
)

func main() {
	json.NewEncoder(os.Stdout).Encode(buildinfo.Get())
}
