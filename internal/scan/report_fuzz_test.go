package scan

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"testing"
)

// FuzzReports scans any input and writes its findings in every report
// format: no report holds a finding's secret (raw, base64 or hex), and
// the JSON report read back as a baseline (--baseline) filters out
// exactly those findings.
func FuzzReports(f *testing.F) {
	f.Add([]byte("API_KEY=Zk3q9XvT2mLp8RwY4nBc\n"))
	f.Add([]byte("token ghp_000000000000000000000000000000000000\n\"password\": \"c0rrect-h0rse-battery\"\n"))
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END RSA PRIVATE KEY-----\n"))
	s := MustTestScanner(f, Options{})
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := s.ScanBytes("fuzz.txt", data)
		for _, format := range Formats {
			var out bytes.Buffer
			if err := WriteReport(&out, format, fs, ReportInfo{ToolVersion: "test"}); err != nil {
				t.Fatalf("%s report: %v", format, err)
			}
			for _, fd := range fs {
				secret := fd.Secret()
				if len(secret) < 8 {
					continue
				}
				for _, form := range []string{secret, base64.StdEncoding.EncodeToString([]byte(secret)), hex.EncodeToString([]byte(secret))} {
					if bytes.Contains(out.Bytes(), []byte(form)) {
						t.Fatalf("%s report holds the secret of %s (%q)", format, fd.RuleID, form)
					}
				}
			}
			if format != "json" {
				continue
			}
			b, err := ReadBaseline(&out)
			if err != nil {
				t.Fatalf("reading our own JSON report as a baseline: %v", err)
			}
			if left := b.Filter(fs); len(left) != 0 {
				t.Fatalf("baseline of %d findings leaves %d", len(fs), len(left))
			}
		}
	})
}
