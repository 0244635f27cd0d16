package httpapi

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/jsonw"
)

// encodingJSON is what writeJSON wrote for every body before jsonAppender.
func encodingJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := jsonw.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// awkwardStrings are strings whose JSON needs each of encoding/json's
// escaping rules.
var awkwardStrings = []string{
	"", "plain", "sk_live_abc123", `quote " and backslash \`, "<script>&amp;</script>",
	"tab\tnewline\nreturn\rbackspace\bformfeed\f", "\x00\x01\x1f\x7f", "ünïcödé ✓ 日本語 🔑",
	"line\u2028separator\u2029paragraph", "invalid \xff utf-8 \xc3", "trailing \xe2\x82",
	"emoji at end 😀", "\\u0041 is not unescaped", "/slash/",
}

func testSecrets() []*tokenward.Secret {
	created := time.Date(2026, 12, 4, 18, 0, 0, 123456789, time.UTC)
	zone := time.FixedZone("x", -(5*3600 + 30*60))
	var out []*tokenward.Secret
	for i, s := range awkwardStrings {
		out = append(out, &tokenward.Secret{
			Project: "payments", Env: "prod", Name: fmt.Sprintf("K_%d", i),
			Owner: s, Description: awkwardStrings[(i+3)%len(awkwardStrings)],
			Tags:      [][]string{nil, {}, {s}, {"a", s, "<b>"}}[i%4],
			ExpiresAt: []time.Time{{}, created.Add(time.Hour), created.In(zone), time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)}[i%4],
			Version:   i * 1000, CreatedAt: created, UpdatedAt: []time.Time{{}, created.Add(time.Nanosecond).In(zone)}[i%2],
			UpdatedBy: awkwardStrings[(i+5)%len(awkwardStrings)],
		})
	}
	out = append(out, &tokenward.Secret{}) // every field zero
	return out
}

// TestJSONAppendersMatchEncodingJSON holds the hand-written encoders of the
// secret read and the environment fetch to encoding/json, byte for byte,
// through writeJSON.
func TestJSONAppendersMatchEncodingJSON(t *testing.T) {
	secrets := testSecrets()
	type tc struct {
		name string
		body jsonAppender
		want any
	}
	var cases []tc
	for _, s := range secrets {
		b := secretBody{s, []byte(s.Owner), s.Version + 1}
		cases = append(cases, tc{"secret " + s.Name, b, b.response()})
	}
	noMeta := secretBody{nil, []byte("v"), 2}
	cases = append(cases, tc{"secret without metadata", noMeta, noMeta.response()})
	// Environment fetches: values of every awkward kind, under awkward
	// names, in name order (SQLite's) and not (PostgreSQL's collation may
	// order them otherwise; the values object is sorted all the same).
	var inOrder []core.EnvValue
	for i, s := range awkwardStrings {
		named := *secrets[i%len(secrets)]
		named.Name = s + fmt.Sprint(i)
		inOrder = append(inOrder, core.EnvValue{Secret: &named, Value: []byte(awkwardStrings[(i+2)%len(awkwardStrings)])})
	}
	slices.SortFunc(inOrder, func(x, y core.EnvValue) int { return strings.Compare(x.Secret.Name, y.Secret.Name) })
	reversed := make([]core.EnvValue, len(inOrder)) // own values: writeJSON wipes what it wrote
	for i, v := range inOrder {
		reversed[len(inOrder)-1-i] = core.EnvValue{Secret: v.Secret, Value: slices.Clone(v.Value)}
	}
	memo := &fieldsMemo{}
	for _, e := range []envValuesBody{
		{"payments", "prod", inOrder, nil},
		{"payments", "prod", reversed, nil},
		{"p<&>", "ü", []core.EnvValue{}, nil},
		{"p", "e", nil, nil},
		{"p", "e", []core.EnvValue{{Secret: secrets[1], Value: []byte("1")}}, nil},
		// Remembered: written once, then from the memo.
		{"payments", "prod", cloneValues(inOrder), memo},
		{"payments", "prod", cloneValues(inOrder), memo},
		{"payments", "prod", cloneValues(reversed), memo},
	} {
		cases = append(cases, tc{fmt.Sprintf("env %q with %d secrets, memo %v", e.project, len(e.vals), e.memo != nil), e, e.response()})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			writeJSON(rec, http.StatusOK, c.body)
			got, want := rec.Body.Bytes(), encodingJSON(t, c.want)
			if !bytes.Equal(got, want) {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
			if cl := rec.Header().Get("Content-Length"); cl != fmt.Sprint(len(want)) {
				t.Errorf("got Content-Length %q; want %d", cl, len(want))
			}
		})
	}
}

// cloneValues copies vs' values (writeJSON wipes what it wrote), sharing
// the secret records.
func cloneValues(vs []core.EnvValue) []core.EnvValue {
	out := make([]core.EnvValue, len(vs))
	for i, v := range vs {
		out[i] = core.EnvValue{Secret: v.Secret, Value: slices.Clone(v.Value)}
	}
	return out
}

// TestFieldsMemo: a remembered record's fields are appendSecretFields' of
// it; another record (a write's replacement) gets its own, and the memo
// starts over past its bound.
func TestFieldsMemo(t *testing.T) {
	var m fieldsMemo
	at := time.Date(2026, 12, 5, 5, 0, 0, 123000, time.UTC)
	v1 := &tokenward.Secret{Project: "p", Env: "e", Name: "K", Version: 1, CreatedAt: at, UpdatedAt: at}
	v2 := &tokenward.Secret{Project: "p", Env: "e", Name: "K", Version: 2, CreatedAt: at, UpdatedAt: at.Add(time.Second), Owner: "team"}
	for i, s := range []*tokenward.Secret{v1, v1, v2, v1, v2} {
		want, _ := appendSecretFields([]byte("x"), s)
		got, ok := m.appendFields([]byte("x"), s)
		if !ok || !bytes.Equal(got, want) {
			t.Fatalf("%d: got %s, %v; want %s", i, got, ok, want)
		}
	}
	if len(m.m) != 2 {
		t.Errorf("remembered %d records; want 2", len(m.m))
	}
	for i := range fieldsMemoMax + 1 {
		m.appendFields(nil, &tokenward.Secret{Name: fmt.Sprint(i), CreatedAt: at, UpdatedAt: at})
	}
	if n := len(m.m); n == 0 || n > fieldsMemoMax {
		t.Errorf("remembered %d records; want some, at most %d", n, fieldsMemoMax)
	}
}

// TestJSONAppenderFallsBack checks a time encoding/json refuses sends the
// answer down encoding/json's path, which fails as it always has, rather
// than writing a timestamp encoding/json would not.
func TestJSONAppenderFallsBack(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("far", 24*3600)),
	} {
		s := &tokenward.Secret{Project: "p", Env: "e", Name: "K", CreatedAt: at}
		for _, body := range []jsonAppender{
			secretBody{s, []byte("v"), 0},
			envValuesBody{"p", "e", []core.EnvValue{{Secret: s, Value: []byte("v")}}, nil},
			envValuesBody{"p", "e", []core.EnvValue{{Secret: s, Value: []byte("v")}}, &fieldsMemo{}},
		} {
			if _, ok := body.appendJSON(nil); ok {
				t.Errorf("%T with created_at %v: got ok; want a fall back", body, at)
			}
			rec := httptest.NewRecorder()
			writeJSON(rec, http.StatusOK, body)
			if strings.Contains(rec.Body.String(), "created_at") {
				t.Errorf("%T with created_at %v: got %s; want encoding/json's (empty) answer", body, at, rec.Body)
			}
		}
	}
}

// TestReleaseJSONBufZeroes checks an answer's bytes (secret values) do not
// outlive the request in the buffer pool.
func TestReleaseJSONBufZeroes(t *testing.T) {
	for _, n := range []int{10, 4096, maxPooledJSON + 1} {
		b := make([]byte, 0, n)
		b = append(b, strings.Repeat("s", n)...)
		bp := &b
		releaseJSONBuf(bp, b)
		if i := bytes.IndexByte(b[:cap(b)], 's'); i >= 0 {
			t.Errorf("cap %d: got byte %q left at %d; want all zero", n, b[i], i)
		}
	}
}

// TestBodiesWipePlaintext: once written, a read's and an environment
// fetch's plaintext values are zeroed (writeJSON wipes the bodies it wrote).
func TestBodiesWipePlaintext(t *testing.T) {
	one := []byte("sk_live_one")
	a, b := []byte("value-a"), []byte("value-b")
	for _, body := range []interface{ wipe() }{
		secretBody{&tokenward.Secret{Name: "K"}, one, 1},
		envValuesBody{"p", "e", []core.EnvValue{{Secret: &tokenward.Secret{Name: "A"}, Value: a}, {Secret: &tokenward.Secret{Name: "B"}, Value: b}}, nil},
	} {
		rec := httptest.NewRecorder()
		writeJSON(rec, http.StatusOK, body)
		if !strings.Contains(rec.Body.String(), "value-") && !strings.Contains(rec.Body.String(), "sk_live_one") {
			t.Errorf("got %s; want the values written before they are wiped", rec.Body)
		}
	}
	for _, v := range [][]byte{one, a, b} {
		if bytes.ContainsFunc(v, func(r rune) bool { return r != 0 }) {
			t.Errorf("got %q after wipe; want zeroes", v)
		}
	}
}
