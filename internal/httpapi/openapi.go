package httpapi

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"sync"

	"gopkg.in/yaml.v3"
)

// The OpenAPI document is openapi.yaml (the core API) merged with one
// fragment per feature in openapi/*.yaml; a fragment holds `paths:` and
// `components:` sections that are added to the core document's.
//
//go:embed openapi.yaml openapi
var openAPIFS embed.FS

var openAPIDoc = sync.OnceValues(buildOpenAPI)

// OpenAPI returns the API's OpenAPI 3 document.
func OpenAPI() []byte {
	b, err := openAPIDoc()
	if err != nil {
		panic(err) // a broken embedded document fails every test
	}
	return b
}

func buildOpenAPI() ([]byte, error) {
	base, err := openAPIFS.ReadFile("openapi.yaml")
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(base, &doc); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	names, _ := fs.Glob(openAPIFS, "openapi/*.yaml")
	if len(names) == 0 {
		return base, nil
	}
	sort.Strings(names)
	for _, name := range names {
		b, err := openAPIFS.ReadFile(name)
		if err != nil {
			return nil, err
		}
		var frag map[string]any
		if err := yaml.Unmarshal(b, &frag); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for key, v := range frag {
			switch key {
			case "paths":
				if err := mergeInto(doc, "paths", v, name); err != nil {
					return nil, err
				}
			case "components":
				comps, _ := v.(map[string]any)
				for ck, cv := range comps {
					dst, _ := doc["components"].(map[string]any)
					if err := mergeInto(dst, ck, cv, name); err != nil {
						return nil, err
					}
				}
			default:
				return nil, fmt.Errorf("%s: a fragment holds only paths and components, not %q", name, key)
			}
		}
	}
	return yaml.Marshal(doc)
}

// mergeInto adds the entries of src (a map) to dst[key], refusing clashes.
func mergeInto(dst map[string]any, key string, src any, from string) error {
	s, ok := src.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: %s must be a map", from, key)
	}
	d, _ := dst[key].(map[string]any)
	if d == nil {
		d = map[string]any{}
		dst[key] = d
	}
	for k, v := range s {
		if _, clash := d[k]; clash {
			return fmt.Errorf("%s: %s.%s is defined twice", from, key, k)
		}
		d[k] = v
	}
	return nil
}
