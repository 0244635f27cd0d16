package httpapi

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/jsonw"
)

// jsonAppender is a response body that writes its own JSON: byte for byte
// what writeJSON's encoding/json encoder (SetEscapeHTML(false), then a
// newline) writes for the same value, without reflection. It is for the
// hottest answers (a secret read, an environment fetch), whose shapes are
// fixed. ok false means the value cannot be written this way (a time
// encoding/json refuses); writeJSON then falls back to encoding/json.
// TestJSONAppendersMatchEncodingJSON holds each one to encoding/json.
type jsonAppender interface {
	appendJSON(b []byte) (_ []byte, ok bool)
}

// jsonBufs recycles response buffers. Buffers that grew past maxPooledJSON
// are dropped rather than kept.
var jsonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

const maxPooledJSON = 64 << 10

// releaseJSONBuf returns b, the last use of the buffer *bp, to jsonBufs. It
// zeroes b first: an answer holds secret values, and a pooled buffer must
// not keep them after the request.
func releaseJSONBuf(bp *[]byte, b []byte) {
	clear(b[:cap(b)])
	if cap(b) > maxPooledJSON {
		return
	}
	*bp = b[:0]
	jsonBufs.Put(bp)
}

// secretBody is GET /v1/secrets/{project}/{env}/{name}'s answer, an
// api.SecretResponse, written without a string copy of the value.
type secretBody struct {
	meta    *tokenward.Secret // nil: none
	value   []byte
	version int
}

// response is the answer as encoding/json writes it (tests, and the fall
// back when appendJSON cannot write it).
func (s secretBody) response() *api.SecretResponse {
	return &api.SecretResponse{Secret: s.meta, Value: string(s.value), ValueVersion: s.version}
}

func (s secretBody) MarshalJSON() ([]byte, error) { return jsonw.Marshal(s.response()) }

func (s secretBody) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, '{')
	ok := true
	if s.meta != nil {
		b, ok = appendSecretFields(b, s.meta)
		b = append(b, ',')
	}
	b = append(b, `"value":`...)
	b = jsonw.AppendString(b, s.value)
	b = append(b, `,"value_version":`...)
	b = strconv.AppendInt(b, int64(s.version), 10)
	return append(b, '}'), ok
}

// wipe zeroes the plaintext once the answer is written, so it does not
// stay in the heap until the collector reuses the memory.
func (s secretBody) wipe() { clear(s.value) }

// envValuesBody is GET /v1/values/{project}/{env}'s answer, an
// api.EnvValuesResponse, written from core's slice: no map of the values
// built only to be sorted again, and no string copies of them.
type envValuesBody struct {
	project, env string
	vals         []core.EnvValue
	memo         *fieldsMemo // nil: each secret's fields written anew
}

// response is the answer as encoding/json writes it (tests, and the
// fall back when appendJSON cannot write it).
func (e envValuesBody) response() *api.EnvValuesResponse {
	r := &api.EnvValuesResponse{Project: e.project, Env: e.env, Values: make(map[string]string, len(e.vals)), Secrets: make([]*tokenward.Secret, 0, len(e.vals))}
	for _, v := range e.vals {
		r.Values[v.Secret.Name] = string(v.Value)
		r.Secrets = append(r.Secrets, v.Secret)
	}
	return r
}

// wipe zeroes the plaintexts once the answer is written (secretBody.wipe).
func (e envValuesBody) wipe() {
	for _, v := range e.vals {
		clear(v.Value)
	}
}

func (e envValuesBody) MarshalJSON() ([]byte, error) { return jsonw.Marshal(e.response()) }

func (e envValuesBody) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"project":`...)
	b = jsonw.AppendString(b, e.project)
	b = append(b, `,"environment":`...)
	b = jsonw.AppendString(b, e.env)
	// The values object has its keys sorted, as encoding/json sorts a
	// map's: the store's order (SQLite's ORDER BY name) usually is already;
	// PostgreSQL's collation may differ.
	b = append(b, `,"values":{`...)
	byName := func(x, y *core.EnvValue) int { return strings.Compare(x.Secret.Name, y.Secret.Name) }
	var order []*core.EnvValue // nil: e.vals' own order is sorted
	for i := 1; i < len(e.vals) && order == nil; i++ {
		if byName(&e.vals[i-1], &e.vals[i]) > 0 {
			order = make([]*core.EnvValue, len(e.vals))
			for j := range e.vals {
				order[j] = &e.vals[j]
			}
			slices.SortStableFunc(order, byName)
		}
	}
	for i := range e.vals {
		v := &e.vals[i]
		if order != nil {
			v = order[i]
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonw.AppendString(b, v.Secret.Name)
		b = append(b, ':')
		b = jsonw.AppendString(b, v.Value)
	}
	b = append(b, `},"secrets":[`...)
	ok := true
	for i, v := range e.vals {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		var sok bool
		b, sok = e.memo.appendFields(b, v.Secret)
		ok = ok && sok
		b = append(b, '}')
	}
	return append(b, "]}"...), ok
}

// fieldsMemo remembers the JSON fields (appendSecretFields) of the secret
// records environment fetches are written from, by the record's identity.
// Those records are the stores' read cache's (core's Shared* reads): one
// per secret, shared by every request until a write replaces it, and never
// changed. Writing twenty secrets' names, owners and three times each was
// a twentieth of a fetch. Records a write replaced stay until the memo,
// past fieldsMemoMax records, starts over. A nil memo remembers nothing.
type fieldsMemo struct {
	mu sync.RWMutex
	m  map[*tokenward.Secret][]byte // the key keeps its record alive, so its address is not reused
}

const fieldsMemoMax = 2048

// appendFields is appendSecretFields(b, s), remembered when it succeeds.
func (m *fieldsMemo) appendFields(b []byte, s *tokenward.Secret) ([]byte, bool) {
	if m == nil {
		return appendSecretFields(b, s)
	}
	m.mu.RLock()
	fields, ok := m.m[s]
	m.mu.RUnlock()
	if ok {
		return append(b, fields...), true
	}
	start := len(b)
	b, ok = appendSecretFields(b, s)
	if !ok {
		return b, false
	}
	m.mu.Lock()
	if m.m == nil || len(m.m) >= fieldsMemoMax {
		m.m = make(map[*tokenward.Secret][]byte)
	}
	m.m[s] = slices.Clone(b[start:])
	m.mu.Unlock()
	return b, true
}

// appendSecretFields appends the fields of tokenward.Secret as
// encoding/json writes them, in declaration order with its tags' omitempty
// and omitzero, without the braces.
func appendSecretFields(b []byte, s *tokenward.Secret) ([]byte, bool) {
	ok := true
	b = append(b, `"project":`...)
	b = jsonw.AppendString(b, s.Project)
	b = append(b, `,"environment":`...)
	b = jsonw.AppendString(b, s.Env)
	b = append(b, `,"name":`...)
	b = jsonw.AppendString(b, s.Name)
	if s.Owner != "" {
		b = append(b, `,"owner":`...)
		b = jsonw.AppendString(b, s.Owner)
	}
	if s.Description != "" {
		b = append(b, `,"description":`...)
		b = jsonw.AppendString(b, s.Description)
	}
	if len(s.Tags) > 0 {
		b = append(b, `,"tags":[`...)
		for i, t := range s.Tags {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonw.AppendString(b, t)
		}
		b = append(b, ']')
	}
	if !s.ExpiresAt.IsZero() {
		b = append(b, `,"expires_at":`...)
		b, ok = appendJSONTime(b, s.ExpiresAt, ok)
	}
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, int64(s.Version), 10)
	b = append(b, `,"created_at":`...)
	b, ok = appendJSONTime(b, s.CreatedAt, ok)
	b = append(b, `,"updated_at":`...)
	b, ok = appendJSONTime(b, s.UpdatedAt, ok)
	if s.UpdatedBy != "" {
		b = append(b, `,"updated_by":`...)
		b = jsonw.AppendString(b, s.UpdatedBy)
	}
	return b, ok
}

// appendJSONTime appends t as time.Time.MarshalJSON does. Where
// MarshalJSON fails (a year outside [0, 9999]), ok becomes false and the
// caller falls back to encoding/json, which reports the error as it always
// has.
func appendJSONTime(b []byte, t time.Time, ok bool) ([]byte, bool) {
	b, tok := jsonw.AppendTime(b, t)
	return b, ok && tok
}
