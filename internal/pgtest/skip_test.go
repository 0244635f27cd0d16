package pgtest

import (
	"errors"
	"testing"
)

// recordTB records whether a helper skipped or failed.
type recordTB struct {
	testing.TB
	skipped, failed bool
}

func (r *recordTB) Helper()               {}
func (r *recordTB) Skipf(string, ...any)  { r.skipped = true }
func (r *recordTB) Fatalf(string, ...any) { r.failed = true }

func TestMissingBinariesSkipButFailInCI(t *testing.T) {
	tests := []struct {
		ci                  string
		wantSkip, wantFatal bool
	}{
		{"", true, false},
		{"false", true, false},
		{"true", false, true},
	}
	for _, tt := range tests {
		t.Run("CI="+tt.ci, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			r := &recordTB{TB: t}
			skipOrFail(r, errors.New("initdb not found"))
			if r.skipped != tt.wantSkip || r.failed != tt.wantFatal {
				t.Fatalf("got skipped=%v failed=%v; want %v %v", r.skipped, r.failed, tt.wantSkip, tt.wantFatal)
			}
		})
	}
}
