package vaultapi

import (
	"bytes"
	"encoding/json"

	"github.com/tokenward/tokenward"
)

// ValueKey is the key a single-valued KV secret uses: {"value": "..."} is
// stored as the plain value, so tokenward run and export inject it as is.
const ValueKey = "value"

// EncodeData is the tokenward value of a KV secret's data. One key named
// "value" holding a string that is not itself a JSON object is stored as
// that string; anything else (several keys, another key, a non-string, a
// string that reads as a JSON object) as the JSON object, compact with
// sorted keys. DecodeValue reverses it exactly.
func EncodeData(data map[string]json.RawMessage) ([]byte, error) {
	if len(data) == 0 {
		return nil, tokenward.Errorf(tokenward.EINVALID, "no data provided")
	}
	if raw, ok := data[ValueKey]; ok && len(data) == 1 {
		var s string
		if json.Unmarshal(raw, &s) == nil && s != "" && !isJSONObject([]byte(s)) {
			return []byte(s), nil
		}
	}
	b, err := json.Marshal(data)
	if err != nil {
		return nil, tokenward.Errorf(tokenward.EINVALID, "data is not valid JSON")
	}
	return b, nil
}

// DecodeValue is the KV data of a tokenward value: a JSON object's keys,
// or {"value": v} for any other value.
func DecodeValue(v []byte) map[string]any {
	if isJSONObject(v) {
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.UseNumber()
		if dec.Decode(&m) == nil {
			return m
		}
	}
	return map[string]any{ValueKey: string(v)}
}

// isJSONObject reports whether b is exactly one JSON object.
func isJSONObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}
