package vaultapi

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tokenward/tokenward"
)

func TestEncodeDecode(t *testing.T) {
	tests := []struct {
		name   string
		data   string // the KV data, as JSON
		stored string // the tokenward value
	}{
		{"one value key is stored plain", `{"value":"sk_live_1"}`, `sk_live_1`},
		{"several keys are one JSON object", `{"user":"app","password":"pw"}`, `{"password":"pw","user":"app"}`},
		{"another single key stays JSON", `{"token":"t"}`, `{"token":"t"}`},
		{"a value that reads as an object stays wrapped", `{"value":"{\"a\":\"b\"}"}`, `{"value":"{\"a\":\"b\"}"}`},
		{"an empty value stays wrapped", `{"value":""}`, `{"value":""}`},
		{"non-string values are kept", `{"port":5432,"tls":true,"tags":["a"]}`, `{"port":5432,"tags":["a"],"tls":true}`},
		{"a value that is a JSON array is plain", `{"value":"[1,2]"}`, `[1,2]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var data map[string]json.RawMessage
			if err := json.Unmarshal([]byte(tc.data), &data); err != nil {
				t.Fatal(err)
			}
			got, err := EncodeData(data)
			if err != nil || string(got) != tc.stored {
				t.Fatalf("EncodeData: got %s, %v; want %s", got, err, tc.stored)
			}
			var want map[string]any
			dec := json.NewDecoder(strings.NewReader(tc.data))
			dec.UseNumber()
			if err := dec.Decode(&want); err != nil {
				t.Fatal(err)
			}
			if back := DecodeValue(got); !reflect.DeepEqual(back, want) {
				t.Errorf("DecodeValue: got %v; want %v", back, want)
			}
		})
	}
	// Values written natively read as {"value": v}, or as their keys when
	// they are a JSON object.
	for v, want := range map[string]map[string]any{
		"hunter2":          {"value": "hunter2"},
		" {\"a\":\"b\"}\n": {"a": "b"},
		"{not json":        {"value": "{not json"},
		"\xff\x00binary":   {"value": "\xff\x00binary"},
	} {
		if got := DecodeValue([]byte(v)); !reflect.DeepEqual(got, want) {
			t.Errorf("DecodeValue(%q): got %v; want %v", v, got, want)
		}
	}
	if _, err := EncodeData(nil); tokenward.ErrorCode(err) != tokenward.EINVALID {
		t.Errorf("EncodeData(no data): got %v; want EINVALID", err)
	}
}

// FuzzKVRoundTrip: any KV data tokenward accepts reads back as written,
// and any stored value decodes to data that encodes back to the same value
// whenever the value is what EncodeData makes.
func FuzzKVRoundTrip(f *testing.F) {
	for _, s := range []string{`{"value":"x"}`, `{"a":"1","b":"2"}`, `{"value":"{}"}`, `{"value":""}`, `{"n":1.50}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var data map[string]json.RawMessage
		if json.Unmarshal(in, &data) == nil {
			stored, err := EncodeData(data)
			if err == nil {
				back, err := json.Marshal(DecodeValue(stored))
				if err != nil {
					t.Fatal(err)
				}
				want, _ := json.Marshal(data)
				if !jsonEqual(back, want) {
					t.Fatalf("data %s stored as %q reads back as %s", want, stored, back)
				}
			}
		}
		// A value: decoding then encoding gives it back when it is plain
		// text or a canonical object.
		d := DecodeValue(in)
		raw := map[string]json.RawMessage{}
		for k, v := range d {
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			raw[k] = b
		}
		if again, err := EncodeData(raw); err == nil && isJSONObject(again) == isJSONObject(in) && string(again) != string(in) {
			var m map[string]any
			if json.Unmarshal(in, &m) == nil {
				if canon, _ := json.Marshal(raw); string(canon) == string(again) {
					return // the same object, in another spelling
				}
			}
			if !isJSONObject(in) && !utf8.Valid(in) {
				return // text is read as UTF-8
			}
			t.Fatalf("value %q decodes to %v and encodes back as %q", in, d, again)
		}
	})
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// TestVersionList: the versions of a delete, undelete or destroy in every
// form Vault takes (its comma-int-slice), and what it refuses.
func TestVersionList(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []int
		ok   bool
	}{
		{`[1, 2]`, []int{1, 2}, true},
		{`["1", "2"]`, []int{1, 2}, true},
		{`"1,2"`, []int{1, 2}, true},
		{`"1, 2"`, []int{1, 2}, true},
		{`["1,2", 3]`, []int{1, 2, 3}, true},
		{`3`, []int{3}, true},
		{`"3"`, []int{3}, true},
		{`[]`, nil, true},
		{`null`, nil, true},
		{`[1.5]`, nil, false},
		{`"1,,2"`, nil, false},
		{`"-1"`, nil, false},
		{`"two"`, nil, false},
		{`{"a":1}`, nil, false},
		{`[true]`, nil, false},
	} {
		var v versionList
		err := json.Unmarshal([]byte(c.in), &v)
		if (err == nil) != c.ok || (c.ok && !slices.Equal([]int(v), c.want)) {
			t.Errorf("%s: got %v, %v; want %v, ok %v", c.in, v, err, c.want, c.ok)
		}
	}
}
