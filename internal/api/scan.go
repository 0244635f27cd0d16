package api

// ScanFingerprintsRequest is the body of POST /v1/scan/fingerprints: the
// scanner's fresh 32-byte key in standard base64. It is used for this
// request alone and never stored, logged or audited.
type ScanFingerprintsRequest struct {
	Key string `json:"key"`
}

// ScanFingerprintsResponse is the answer: one entry per managed value
// (CURRENT and PREVIOUS of each readable secret).
type ScanFingerprintsResponse struct {
	Fingerprints []Fingerprint `json:"fingerprints"`
}

// Fingerprint is HMAC-SHA256(key, value) in hex, and the path
// (project/env/NAME) of the secret holding the value.
type Fingerprint struct {
	HMAC string `json:"hmac"`
	Path string `json:"path"`
}
