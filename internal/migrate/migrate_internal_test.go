package migrate

import (
	"slices"
	"strings"
	"testing"
)

var testCols = []column{{name: "a", class: classText}, {name: "b", class: classText}, {name: "n", class: classInteger}, {name: "v", class: classBytes}}

func sumOf(t *testing.T, rows ...[]any) string {
	t.Helper()
	c := newChecksum()
	for _, r := range rows {
		vs, err := canonical("t", testCols, r)
		if err != nil {
			t.Fatal(err)
		}
		c.add(testCols, vs)
	}
	return c.sum()
}

// TestChecksum: the checksum does not depend on the order rows come in or
// on how a driver hands back a value, and it tells apart rows that a
// plain concatenation would not.
func TestChecksum(t *testing.T) {
	base := []any{"ab", "c", int64(1), []byte{1, 2}}
	other := []any{"x", "", nil, []byte{}}
	tests := []struct {
		name  string
		a, b  [][]any
		equal bool
	}{
		{"row order", [][]any{base, other}, [][]any{other, base}, true},
		{"text as bytes, integer as int32", [][]any{base}, [][]any{{[]byte("ab"), "c", int32(1), []byte{1, 2}}}, true},
		{"a boundary moved between columns", [][]any{base}, [][]any{{"a", "bc", int64(1), []byte{1, 2}}}, false},
		{"NULL and zero", [][]any{{"a", "b", nil, nil}}, [][]any{{"a", "b", int64(0), nil}}, false},
		{"NULL and empty bytes", [][]any{{"a", "b", nil, nil}}, [][]any{{"a", "b", nil, []byte{}}}, false},
		{"a row twice", [][]any{base}, [][]any{base, base}, false},
		{"one byte of a value", [][]any{base}, [][]any{{"ab", "c", int64(1), []byte{1, 3}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := sumOf(t, tt.a...), sumOf(t, tt.b...)
			if (a == b) != tt.equal {
				t.Errorf("checksums %s and %s: got equal=%v; want %v", a, b, a == b, tt.equal)
			}
		})
	}
}

// TestCanonicalRefuses values a column cannot hold, naming the type, never
// the value.
func TestCanonicalRefuses(t *testing.T) {
	const canary = "ciphertext-canary"
	tests := []struct {
		name string
		row  []any
		want string
	}{
		{"a float in an integer column", []any{"a", "b", 1.5, nil}, "column n: a float64 value where integer is stored"},
		{"text in an integer column", []any{"a", "b", canary, nil}, "column n: a string value where integer is stored"},
		{"invalid UTF-8 in a text column", []any{[]byte("\xff" + canary), "b", nil, nil}, "column a: a []uint8 value where text is stored"},
		{"too few values", []any{"a"}, "got 1 values for 4 columns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := canonical("t", testCols, tt.row)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v; want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), canary) {
				t.Errorf("the error repeats the value: %v", err)
			}
		})
	}
}

func TestParentsFirst(t *testing.T) {
	tests := []struct {
		name    string
		parents map[string][]string
		want    []string
		wantErr string
	}{
		{"chain", map[string][]string{"secret_versions": {"secrets"}, "secrets": {"environments"}, "environments": {"projects"}, "projects": nil},
			[]string{"projects", "environments", "secrets", "secret_versions"}, ""},
		{"independent tables by name", map[string][]string{"b": nil, "a": nil, "c": {"b"}}, []string{"a", "b", "c"}, ""},
		{"self-reference and outside table", map[string][]string{"a": {"a", "elsewhere"}}, []string{"a"}, ""},
		{"cycle", map[string][]string{"a": {"b"}, "b": {"a"}}, nil, "cycle (a → b → a)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := map[string]*table{}
			for name, ps := range tt.parents {
				ts[name] = &table{name: name, parents: ps}
			}
			got, err := parentsFirst(ts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}
