package loadgen

import (
	"errors"
	"strings"
	"testing"
)

func TestParseMix(t *testing.T) {
	tests := []struct {
		in      string
		want    string // Mix.String(); "" when an error is wanted
		wantErr string
	}{
		{in: "read=90,write=10", want: "read=90,write=10"},
		{in: "write=10,read=90", want: "read=90,write=10"}, // Ops order
		{in: " read = 1 , env=2 ", want: "read=1,env=2"},
		{in: "read=1,env=0", want: "read=1"}, // 0 leaves it out
		{in: "oidc=5,token=5,write=5,env=5,read=5", want: "read=5,env=5,write=5,token=5,oidc=5"},
		{in: "read=1000000", want: "read=1000000"},
		{in: "", wantErr: "want op=weight pairs"},
		{in: "read", wantErr: "want op=weight pairs"},
		{in: "=5", wantErr: "want op=weight pairs"},
		{in: "read=90,", wantErr: "want op=weight pairs"},
		{in: "delete=1", wantErr: `unknown operation "delete"`},
		{in: "READ=1", wantErr: `unknown operation "READ"`},
		{in: "read=1,read=2", wantErr: "read given twice"},
		{in: "read=-1", wantErr: "whole number from 0"},
		{in: "read=1.5", wantErr: "whole number from 0"},
		{in: "read=1000001", wantErr: "whole number from 0"},
		{in: "read=0", wantErr: "no operation has a positive weight"},
		{in: "read=0,env=0", wantErr: "no operation has a positive weight"},
		{in: "gateway=10", wantErr: "not available in this build"},
		{in: "read=90,gateway=0", wantErr: "not available in this build"},
		{in: "baseline=1", wantErr: "unknown operation"},
		{in: "read=1,\x00=1", wantErr: `unknown operation "?"`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			m, err := ParseMix(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseMix(%q): got %v, %v; want an error containing %q", tc.in, m, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMix(%q): %v", tc.in, err)
			}
			if got := m.String(); got != tc.want {
				t.Errorf("ParseMix(%q): got %q; want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseMixGatewayIsErrNotAvailable(t *testing.T) {
	if _, err := ParseMix("gateway=1"); !errors.Is(err, ErrNotAvailable) {
		t.Errorf("got %v; want ErrNotAvailable", err)
	}
}

// TestSchedule checks that one pass of the schedule holds each op as often
// as its weight, and that ops are interleaved rather than in runs.
func TestSchedule(t *testing.T) {
	tests := []struct {
		mix     string
		want    map[Op]int
		maxRun  int // longest run of one op
		wantLen int
	}{
		{"read=90,write=10", map[Op]int{OpRead: 90, OpWrite: 10}, 9, 100},
		{"read=1,env=1,write=1", map[Op]int{OpRead: 1, OpEnv: 1, OpWrite: 1}, 1, 3},
		{"read=3,env=1", map[Op]int{OpRead: 3, OpEnv: 1}, 3, 4},
		// Long schedules are scaled down to 1000 slots, proportions kept.
		{"read=900000,write=100000", map[Op]int{OpRead: 900, OpWrite: 100}, 9, 1000},
		// A tiny weight beside huge ones keeps at least one slot.
		{"read=1000000,token=1", map[Op]int{OpRead: 999, OpToken: 1}, 999, 1000},
	}
	for _, tc := range tests {
		t.Run(tc.mix, func(t *testing.T) {
			m, err := ParseMix(tc.mix)
			if err != nil {
				t.Fatal(err)
			}
			s := m.schedule()
			if len(s) != tc.wantLen {
				t.Errorf("got %d slots; want %d", len(s), tc.wantLen)
			}
			got := map[Op]int{}
			run, longest := 0, 0
			for i, op := range s {
				got[op]++
				if i > 0 && s[i-1] == op {
					run++
				} else {
					run = 1
				}
				longest = max(longest, run)
			}
			for op, n := range tc.want {
				if got[op] != n {
					t.Errorf("%s: got %d slots; want %d", op, got[op], n)
				}
			}
			if longest > tc.maxRun {
				t.Errorf("longest run of one op: got %d; want at most %d", longest, tc.maxRun)
			}
		})
	}
}

// FuzzParseMix: whatever ParseMix accepts prints back to a string that
// parses to the same mix, with positive weights and no op twice.
func FuzzParseMix(f *testing.F) {
	for _, s := range []string{"read=90,write=10", "read=1,env=2,write=3,token=4,oidc=5", " read = 0 ,env=7", "gateway=1", "read=1,read=1", "", "=", ",,", "read=99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMix(s)
		if err != nil {
			if m != nil {
				t.Fatalf("ParseMix(%q): a mix %v with error %v", s, m, err)
			}
			return
		}
		seen := map[Op]bool{}
		for _, w := range m {
			if w.Weight <= 0 || w.Weight > maxWeight || seen[w.Op] || w.Op == OpGateway {
				t.Fatalf("ParseMix(%q) = %v: bad entry %v", s, m, w)
			}
			seen[w.Op] = true
		}
		again, err := ParseMix(m.String())
		if err != nil || again.String() != m.String() {
			t.Fatalf("ParseMix(%q).String() = %q parses to %v, %v", s, m.String(), again, err)
		}
		if len(m.schedule()) == 0 {
			t.Fatalf("ParseMix(%q): empty schedule", s)
		}
	})
}
