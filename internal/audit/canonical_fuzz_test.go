package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

// rawEntry spells out a version 1 entry encoding field by field, so a test
// can write what Canonical never would: keys out of order, a status of
// 1000, nanoseconds past a second.
type rawEntry struct {
	seq, sec int64
	nsec     uint32
	strs     [7]string // RequestID, TokenID, TokenName, Action, Resource, Outcome, Reason
	status   int64
	ip, ua   string
	ci, meta [][2]string
	prev     string
}

func (r rawEntry) encode() []byte {
	b := []byte(canonicalMagic)
	b = appendInt(b, r.seq)
	b = appendInt(b, r.sec)
	b = binary.BigEndian.AppendUint32(b, r.nsec)
	for _, s := range r.strs {
		b = appendString(b, s)
	}
	b = appendInt(b, r.status)
	b = appendString(b, r.ip)
	b = appendString(b, r.ua)
	for _, m := range [][][2]string{r.ci, r.meta} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(m)))
		for _, kv := range m {
			b = appendString(b, kv[0])
			b = appendString(b, kv[1])
		}
	}
	return appendString(b, r.prev)
}

// rawBase is the encoding of baseEntry, spelled out.
func rawBase() rawEntry {
	return rawEntry{
		seq: 7, sec: testEpoch.Unix(), nsec: 123456000,
		strs:   [7]string{"req-0001", "tok_01", "ci-deploy", "secret.read", "payments/prod/STRIPE_KEY", tokenward.OutcomeAllowed, ""},
		status: 200, ip: "203.0.113.7", ua: "tokenward-cli/1.0",
		ci:   [][2]string{{"repository", "acme/payments"}, {"run_id", "1001"}},
		meta: [][2]string{{"value_hmac", "9f2c"}},
		prev: GenesisHash,
	}
}

func baseEntry() *tokenward.AuditEntry {
	e := newEntry(1)
	e.Seq, e.Time, e.PrevHash = 7, testEpoch.Add(123456*time.Microsecond), GenesisHash
	e.Meta = map[string]string{"value_hmac": "9f2c"}
	e.Hash = HashEntry(e)
	return e
}

// entryDiff describes the first field in which got differs from want, or
// returns "". A nil and an empty map are the same (the encoding cannot tell
// them apart); times compare as instants.
func entryDiff(got, want *tokenward.AuditEntry) string {
	type field struct {
		name      string
		got, want any
	}
	fields := []field{
		{"Seq", got.Seq, want.Seq},
		{"RequestID", got.RequestID, want.RequestID},
		{"TokenID", got.TokenID, want.TokenID},
		{"TokenName", got.TokenName, want.TokenName},
		{"Action", got.Action, want.Action},
		{"Resource", got.Resource, want.Resource},
		{"Outcome", got.Outcome, want.Outcome},
		{"Reason", got.Reason, want.Reason},
		{"Status", got.Status, want.Status},
		{"SourceIP", got.SourceIP, want.SourceIP},
		{"UserAgent", got.UserAgent, want.UserAgent},
		{"PrevHash", got.PrevHash, want.PrevHash},
	}
	for _, f := range fields {
		if f.got != f.want {
			return fmt.Sprintf("%s: got %q; want %q", f.name, fmt.Sprint(f.got), fmt.Sprint(f.want))
		}
	}
	if !got.Time.Equal(want.Time) {
		return fmt.Sprintf("Time: got %s; want %s", got.Time.Format(time.RFC3339Nano), want.Time.Format(time.RFC3339Nano))
	}
	if !maps.Equal(got.CI, want.CI) {
		return fmt.Sprintf("CI: got %v; want %v", got.CI, want.CI)
	}
	if !maps.Equal(got.Meta, want.Meta) {
		return fmt.Sprintf("Meta: got %v; want %v", got.Meta, want.Meta)
	}
	return ""
}

func TestRawEntryMatchesCanonical(t *testing.T) {
	// The hand-written encoder the error tables build on must agree with
	// Canonical, or those tables test nothing.
	if got, want := rawBase().encode(), Canonical(baseEntry()); !bytes.Equal(got, want) {
		t.Fatalf("got raw encoding %x; want Canonical's %x", got, want)
	}
}

func TestParseCanonicalRoundTrip(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name string
		e    func() *tokenward.AuditEntry
	}{
		{"allowed with CI", func() *tokenward.AuditEntry { return newEntry(1) }},
		{"denied with reason", func() *tokenward.AuditEntry { return newEntry(3) }},
		{"meta map", func() *tokenward.AuditEntry {
			e := newEntry(2)
			e.Meta = map[string]string{"value_hmac": "hmac-sha256:9f2c", "version": "3", "": "empty key"}
			return e
		}},
		{"nil maps", func() *tokenward.AuditEntry {
			e := newEntry(4)
			e.CI, e.Meta = nil, nil
			return e
		}},
		{"empty maps", func() *tokenward.AuditEntry {
			e := newEntry(5)
			e.CI, e.Meta = map[string]string{}, map[string]string{}
			return e
		}},
		{"unicode and control bytes", func() *tokenward.AuditEntry {
			e := newEntry(7)
			e.Resource = "zahlungen/prod/schlüssel/ключ/🔑"
			e.UserAgent = "agent\x00with\nbytes\xff"
			e.CI = map[string]string{"dépôt": "acme/paiements", "ветка": "main", "z": ""}
			return e
		}},
		{"empty strings", func() *tokenward.AuditEntry {
			return &tokenward.AuditEntry{Action: "x", Outcome: tokenward.OutcomeError}
		}},
		{"nanoseconds kept", func() *tokenward.AuditEntry {
			e := newEntry(8)
			e.Time = at
			return e
		}},
		{"before the epoch", func() *tokenward.AuditEntry {
			e := newEntry(9)
			e.Time = time.Date(1969, 12, 31, 23, 59, 59, 500000000, time.UTC)
			return e
		}},
		{"status bounds", func() *tokenward.AuditEntry {
			e := newEntry(10)
			e.Status = 999
			return e
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.e()
			if want.Time.IsZero() {
				want.Time = testEpoch
			}
			// Chain it the way the journal does: time truncated to
			// microseconds, in UTC; Seq, PrevHash and Hash set.
			if !strings.Contains(tt.name, "nanoseconds") {
				c, err := NewChain(nil)
				if err != nil {
					t.Fatal(err)
				}
				want.Time = want.Time.In(time.FixedZone("X", 5*3600)).Add(789 * time.Nanosecond)
				if err := c.Append(want, func(*tokenward.AuditEntry) error { return nil }); err != nil {
					t.Fatal(err)
				}
				if ns := want.Time.Nanosecond(); ns%1000 != 0 {
					t.Fatalf("test setup: got %d ns; want the chain to truncate to microseconds", ns)
				}
			} else {
				want.Seq, want.PrevHash = 42, GenesisHash
			}
			enc := Canonical(want)
			got, err := ParseCanonical(enc)
			if err != nil {
				t.Fatalf("got %v; want the encoding to parse", err)
			}
			if d := entryDiff(got, want); d != "" {
				t.Error(d)
			}
			if h := HashEntry(want); got.Hash != h {
				t.Errorf("got hash %s; want HashEntry %s", got.Hash, h)
			}
			if got.Time.Location() != time.UTC {
				t.Errorf("got time in %s; want UTC", got.Time.Location())
			}
			if again := Canonical(got); !bytes.Equal(again, enc) {
				t.Errorf("got re-encoding %x; want the input %x", again, enc)
			}
		})
	}
}

func TestParseCanonicalAcceptsBounds(t *testing.T) {
	tests := []struct {
		name string
		r    func(r *rawEntry)
	}{
		{"nanoseconds 999999999", func(r *rawEntry) { r.nsec = 999999999 }},
		{"status 0", func(r *rawEntry) { r.status = 0 }},
		{"status 999", func(r *rawEntry) { r.status = 999 }},
		{"seq 0", func(r *rawEntry) { r.seq = 0 }},
		{"negative seconds", func(r *rawEntry) { r.sec = -1 }},
		{"empty first key", func(r *rawEntry) { r.meta = [][2]string{{"", "v"}, {"a", ""}} }},
		{"no maps", func(r *rawEntry) { r.ci, r.meta = nil, nil }},
		{"empty prev hash", func(r *rawEntry) { r.prev = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rawBase()
			tt.r(&r)
			in := r.encode()
			e, err := ParseCanonical(in)
			if err != nil {
				t.Fatalf("got %v; want the encoding accepted", err)
			}
			if out := Canonical(e); !bytes.Equal(out, in) {
				t.Errorf("got re-encoding %x; want %x", out, in)
			}
		})
	}
}

func TestParseCanonicalRejects(t *testing.T) {
	base := rawBase().encode()
	magic := len(canonicalMagic)
	reqIDLen := magic + 8 + 8 + 4 // the RequestID's length prefix
	prevLen := len(base) - len(GenesisHash) - 4
	patch := func(b []byte, off int, v uint32) []byte {
		b = bytes.Clone(b)
		binary.BigEndian.PutUint32(b[off:], v)
		return b
	}
	raw := func(f func(r *rawEntry)) []byte {
		r := rawBase()
		f(&r)
		return r.encode()
	}
	// Without maps and PrevHash the encoding ends with the CI count, the
	// Meta count and the PrevHash length, 4 bytes each.
	bare := raw(func(r *rawEntry) { r.ci, r.meta, r.prev = nil, nil, "" })
	ciCount := len(bare) - 12

	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"magic only", []byte(canonicalMagic)},
		{"no magic", base[magic:]},
		{"wrong magic version", append([]byte("tokenward-audit-entry-v2\x00"), base[magic:]...)},
		{"magic without its NUL", append([]byte("tokenward-audit-entry-v1"), base[magic:]...)},
		{"truncated in seq", base[:magic+3]},
		{"truncated in time", base[:magic+8+10]},
		{"truncated in a length", base[:reqIDLen+2]},
		{"truncated in a string", base[:reqIDLen+4+3]},
		{"truncated before prev hash", base[:prevLen]},
		{"truncated in prev hash", base[:len(base)-1]},
		{"trailing byte", append(bytes.Clone(base), 0)},
		{"two entries", append(bytes.Clone(base), base...)},
		{"string length beyond input", patch(base, reqIDLen, 0xFFFFFFFF)},
		{"string length one past input", patch(base, prevLen, uint32(len(GenesisHash)+1))},
		{"map count beyond input", patch(bare, ciCount, 0xFFFFFFFF)},
		{"map count with pairs missing", patch(bare, ciCount, 2)},
		{"map keys out of order", raw(func(r *rawEntry) { r.ci = [][2]string{{"run_id", "1"}, {"repository", "a"}} })},
		{"map key duplicated", raw(func(r *rawEntry) { r.ci = [][2]string{{"a", "1"}, {"a", "2"}} })},
		{"meta keys out of order", raw(func(r *rawEntry) { r.meta = [][2]string{{"b", ""}, {"a", ""}} })},
		{"empty key after another", raw(func(r *rawEntry) { r.meta = [][2]string{{"a", ""}, {"", ""}} })},
		{"nanoseconds 1e9", raw(func(r *rawEntry) { r.nsec = 1e9 })},
		{"nanoseconds max", raw(func(r *rawEntry) { r.nsec = 0xFFFFFFFF })},
		{"status -1", raw(func(r *rawEntry) { r.status = -1 })},
		{"status 1000", raw(func(r *rawEntry) { r.status = 1000 })},
		{"status beyond int32", raw(func(r *rawEntry) { r.status = 1 << 40 })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ParseCanonical(tt.in)
			if err == nil {
				t.Fatalf("got entry %+v; want an error", e)
			}
			if e != nil {
				t.Errorf("got entry %+v with the error; want nil", e)
			}
			if code := tokenward.ErrorCode(err); code != tokenward.EINVALID {
				t.Errorf("got code %q (%v); want %q", code, err, tokenward.EINVALID)
			}
		})
	}
	t.Run("every truncation", func(t *testing.T) {
		for n := range len(base) {
			if _, err := ParseCanonical(base[:n]); tokenward.ErrorCode(err) != tokenward.EINVALID {
				t.Errorf("got %v for the first %d of %d bytes; want an EINVALID error", err, n, len(base))
			}
		}
	})
}

// journalBytes returns a journal file holding es.
func journalBytes(es ...*tokenward.AuditEntry) []byte {
	b := []byte(journalMagic)
	for _, e := range es {
		b = appendFrame(b, Canonical(e))
	}
	return b
}

// FuzzParseCanonical: ParseCanonical never panics, refuses with EINVALID,
// and an encoding it accepts has one reading only: it encodes back to the
// same bytes, whose hash is the entry's.
func FuzzParseCanonical(f *testing.F) {
	for i := range 6 {
		e := newEntry(i)
		e.Seq, e.Time, e.PrevHash = int64(i+1), testEpoch.Add(time.Duration(i)*time.Microsecond), GenesisHash
		if i%2 == 0 {
			e.Meta = map[string]string{"value_hmac": "9f2c", "version": fmt.Sprint(i)}
		}
		f.Add(Canonical(e))
	}
	f.Add(rawBase().encode())
	f.Add([]byte(canonicalMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := ParseCanonical(in)
		if err != nil {
			if code := tokenward.ErrorCode(err); code != tokenward.EINVALID {
				t.Fatalf("got code %q (%v); want %q", code, err, tokenward.EINVALID)
			}
			return
		}
		if out := Canonical(e); !bytes.Equal(out, in) {
			t.Fatalf("got re-encoding %x; want the input %x", out, in)
		}
		sum := sha256.Sum256(in)
		if want := hex.EncodeToString(sum[:]); e.Hash != want {
			t.Fatalf("got hash %s; want %s", e.Hash, want)
		}
	})
}

// FuzzParseJournal: parseJournal never panics, and what it accepts is the
// input's prefix frame by frame: the entries re-encoded after the magic are
// the input without its torn tail.
func FuzzParseJournal(f *testing.F) {
	var es []*tokenward.AuditEntry
	c, err := NewChain(nil)
	if err != nil {
		f.Fatal(err)
	}
	// Small entries: the fuzzer minimizes what it finds interesting, and
	// that takes long on long inputs.
	for i := 1; i <= 4; i++ {
		e := &tokenward.AuditEntry{Action: "a", Outcome: tokenward.OutcomeAllowed, Time: testEpoch.Add(time.Duration(i) * time.Second)}
		if i == 2 {
			e.Meta = map[string]string{"k": "v"}
		}
		if err := c.Append(e, func(*tokenward.AuditEntry) error { return nil }); err != nil {
			f.Fatal(err)
		}
		es = append(es, e)
	}
	good := journalBytes(es[:3]...)
	next := appendFrame(nil, Canonical(es[3]))
	f.Add(good)
	f.Add(append(bytes.Clone(good), next[:len(next)/2]...))
	f.Add(append(bytes.Clone(good), next[:5]...))
	f.Add(append(bytes.Clone(good), make([]byte, 16)...))
	f.Add([]byte(journalMagic))
	f.Add([]byte(journalMagic[:9]))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		entries, torn, err := parseJournal(in)
		if err != nil {
			if code := tokenward.ErrorCode(err); code != tokenward.EINVALID {
				t.Fatalf("got code %q (%v); want %q", code, err, tokenward.EINVALID)
			}
			return
		}
		if torn < 0 || torn > len(in) {
			t.Fatalf("got torn %d of %d bytes; want 0..%d", torn, len(in), len(in))
		}
		if len(in) < len(journalMagic) {
			if len(entries) != 0 || torn != len(in) {
				t.Fatalf("got %d entries, torn %d from a torn header of %d bytes; want none, all torn", len(entries), torn, len(in))
			}
			return
		}
		if out, want := journalBytes(entries...), in[:len(in)-torn]; !bytes.Equal(out, want) {
			t.Fatalf("got re-encoding %x; want the valid prefix %x", out, want)
		}
	})
}
