package core_test

import (
	"testing"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
)

func TestParseVersionSelector(t *testing.T) {
	tests := []struct {
		in      string
		n       int
		label   string
		invalid bool
	}{
		{"", 0, "", false},
		{"current", 0, "", false},
		{"previous", 0, tokenward.LabelPrevious, false},
		{"PENDING", 0, tokenward.LabelPending, false},
		{"7", 7, "", false},
		{"0", 0, "", true},
		{"-1", 0, "", true},
		{"07", 0, "", true},
		{"1.5", 0, "", true},
		{"latest", 0, "", true},
		{"9999999999999999999999", 0, "", true},
	}
	for _, tt := range tests {
		n, label, err := core.ParseVersionSelector(tt.in)
		if (err != nil) != tt.invalid || n != tt.n || label != tt.label {
			t.Errorf("ParseVersionSelector(%q): got %d, %q, %v; want %d, %q, invalid %v", tt.in, n, label, err, tt.n, tt.label, tt.invalid)
		}
		if err != nil && tokenward.ErrorCode(err) != tokenward.EINVALID {
			t.Errorf("ParseVersionSelector(%q): got code %s; want invalid", tt.in, tokenward.ErrorCode(err))
		}
	}
}

func FuzzParseVersionSelector(f *testing.F) {
	for _, s := range []string{"", "current", "previous", "pending", "1", "42", "0", "x", "1e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, label, err := core.ParseVersionSelector(s)
		switch {
		case err != nil:
			if n != 0 || label != "" {
				t.Fatalf("error with a result: %d %q", n, label)
			}
		case label != "":
			if n != 0 || (label != tokenward.LabelPrevious && label != tokenward.LabelPending) {
				t.Fatalf("got %d %q", n, label)
			}
		case n < 0:
			t.Fatalf("negative version %d", n)
		}
	})
}
