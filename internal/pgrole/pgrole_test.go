package pgrole

import (
	"strings"
	"testing"
)

func TestVerifierFormat(t *testing.T) {
	// The real-cluster tests (internal/rotate, internal/dynamic) log in
	// with passwords set by verifier; here the format itself is checked.
	v, err := Verifier("pencil")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v, "SCRAM-SHA-256$4096:") || strings.Count(v, "$") != 2 || strings.Contains(v, "pencil") {
		t.Fatalf("verifier: got %q; want SCRAM-SHA-256$4096:<salt>$<stored>:<server> without the password", v)
	}
	w, _ := Verifier("pencil")
	if v == w {
		t.Fatal("two verifiers of one password are equal; want a fresh salt each time")
	}
}

func TestQuote(t *testing.T) {
	tests := []struct{ in, literal, ident string }{
		{"abc", "'abc'", `"abc"`},
		{"a'b", "'a''b'", `"a'b"`},
		{`a\b`, `E'a\\b'`, `"a\b"`},
		{`a\'; CREATE ROLE x; --`, `E'a\\''; CREATE ROLE x; --'`, `"a\'; CREATE ROLE x; --"`},
		{`a"b`, `'a"b'`, `"a""b"`},
		{"''", "''''''", `"''"`},
	}
	for _, tt := range tests {
		if got := QuoteLiteral(tt.in); got != tt.literal {
			t.Errorf("QuoteLiteral(%q): got %s; want %s", tt.in, got, tt.literal)
		}
		if got := QuoteIdent(tt.in); got != tt.ident {
			t.Errorf("QuoteIdent(%q): got %s; want %s", tt.in, got, tt.ident)
		}
	}
}
