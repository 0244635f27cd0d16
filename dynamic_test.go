package tokenward

import "testing"

func TestPathUnder(t *testing.T) {
	for _, tt := range []struct {
		path, prefix string
		want         bool
	}{
		{"acme/prod/db", "", true},
		{"acme/prod/db", "acme", true},
		{"acme/prod/db", "acme/", true},
		{"acme/prod/db", "acme/prod", true},
		{"acme/prod/db", "acme/prod/", true},
		{"acme/prod/db", "acme/prod/db", true},
		{"acme/prod/db2", "acme/prod/db", false},
		{"acme/prod/db", "acme/prod/d", false},
		{"acme/production/db", "acme/prod", false},
		{"acmeco/prod/db", "acme", false},
	} {
		if got := PathUnder(tt.path, tt.prefix); got != tt.want {
			t.Errorf("PathUnder(%q, %q) = %v; want %v", tt.path, tt.prefix, got, tt.want)
		}
	}
}
