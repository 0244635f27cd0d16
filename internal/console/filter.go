package console

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// filter is a parsed filter query: space-separated key:value terms, each
// key at most once, e.g. "action:secret.* outcome:denied token:ci".
type filter map[string]string

// maxFilterLen bounds a filter query.
const maxFilterLen = 512

// parseFilter parses q, allowing only keys. A value runs to the next space;
// it may not be empty.
func parseFilter(q string, keys []string) (filter, error) {
	if len(q) > maxFilterLen {
		return nil, fmt.Errorf("the filter is longer than %d bytes", maxFilterLen)
	}
	if !utf8.ValidString(q) {
		return nil, fmt.Errorf("the filter is not valid UTF-8")
	}
	f := filter{}
	// A bad term is named by its place, never repeated: q comes from the
	// address, which a crafted link (kept through sign-in by next=) sets,
	// and its words would read as the console's.
	for i, term := range strings.Fields(q) {
		key, value, ok := strings.Cut(term, ":")
		if !ok {
			return nil, fmt.Errorf("term %d is not key:value (keys: %s)", i+1, strings.Join(keys, ", "))
		}
		if !slices.Contains(keys, key) {
			return nil, fmt.Errorf("term %d: unknown filter key (keys: %s)", i+1, strings.Join(keys, ", "))
		}
		if value == "" {
			return nil, fmt.Errorf("%s: needs a value", key)
		}
		if _, dup := f[key]; dup {
			return nil, fmt.Errorf("%s: given twice", key)
		}
		f[key] = value
	}
	return f, nil
}

// String is the canonical form of f: terms sorted by key.
func (f filter) String() string {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k + ":" + f[k])
	}
	return b.String()
}
