package httpapi_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestReservedMountsDocumented: docs/vault.md lists exactly the first path
// segments of tokenward's own routes, the project names that cannot be
// Vault mounts.
func TestReservedMountsDocumented(t *testing.T) {
	e := MustServe(t)
	doc, err := os.ReadFile("../../docs/vault.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(doc), "Today these are:")
	list, _, _ := strings.Cut(after, "plus `sys`")
	if !ok {
		t.Fatal(`docs/vault.md has no "Today these are:" list`)
	}
	var documented []string
	for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(list, -1) {
		documented = append(documented, m[1])
	}
	served := e.api.NativeSegments()
	slices.Sort(documented)
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		t.Errorf("docs/vault.md lists %v; the server's own first segments are %v", documented, served)
	}
}
