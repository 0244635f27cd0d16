package client

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"github.com/tokenward/tokenward/internal/api"
)

// Fingerprints asks the server for the keyed fingerprints of the managed
// values the token may read (CURRENT and PREVIOUS): HMAC-SHA256(key, value)
// → project/env/NAME. key is the scanner's fresh per-scan key; no value
// travels. *Client is thereby a scan.FingerprintSource.
func (c *Client) Fingerprints(ctx context.Context, key []byte) (map[[32]byte]string, error) {
	var out api.ScanFingerprintsResponse
	in := api.ScanFingerprintsRequest{Key: base64.StdEncoding.EncodeToString(key)}
	if err := c.do(ctx, "POST", at("/v1/scan/fingerprints"), in, &out); err != nil {
		return nil, err
	}
	set := make(map[[32]byte]string, len(out.Fingerprints))
	for i, f := range out.Fingerprints {
		var sum [32]byte
		if len(f.HMAC) != 2*len(sum) {
			return nil, fmt.Errorf("fingerprint %d: want %d hex digits", i, 2*len(sum))
		}
		if _, err := hex.Decode(sum[:], []byte(f.HMAC)); err != nil {
			return nil, fmt.Errorf("fingerprint %d: not hex", i)
		}
		if f.Path == "" {
			return nil, fmt.Errorf("fingerprint %d: no path", i)
		}
		set[sum] = f.Path
	}
	return set, nil
}
