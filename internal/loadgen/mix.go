// Package loadgen drives a tokenward server with a weighted mix of API
// operations from many concurrent clients and measures what it answers:
// requests per second, latency percentiles and errors per operation, and
// the CPU and memory of the server processes it is given. `tokenward bench`
// (cmd/tokenward/bench.go) wires it; docs/performance.md shows a run.
package loadgen

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tokenward/tokenward"
)

// Op names one kind of request in a mix.
type Op string

// The operations a mix may hold.
const (
	OpRead    Op = "read"    // GET one secret
	OpEnv     Op = "env"     // GET a whole environment of 20 secrets, as `tokenward run` does
	OpWrite   Op = "write"   // PUT a new version of a secret
	OpToken   Op = "token"   // POST a new token
	OpOIDC    Op = "oidc"    // exchange a CI identity token for a just-in-time token
	OpGateway Op = "gateway" // a call through the gateway (not built yet)

	// OpBaseline is the bare net/http handler of --baseline; never in a
	// parsed mix.
	OpBaseline Op = "baseline"
)

// Ops lists every operation a mix may name, in the order reports list them.
var Ops = []Op{OpRead, OpEnv, OpWrite, OpToken, OpOIDC, OpGateway}

// ErrNotAvailable is returned for an operation this build cannot run.
var ErrNotAvailable = errors.New("not available in this build")

// Weight is one operation's share of a mix.
type Weight struct {
	Op     Op
	Weight int
}

// Mix is a weighted set of operations, each named once, weights positive,
// in the order of Ops.
type Mix []Weight

// maxWeight bounds one weight so the sum cannot overflow.
const maxWeight = 1_000_000

// ParseMix parses "read=90,write=10": comma-separated op=weight pairs, each
// op once, weights non-negative integers (0 leaves the op out), at least one
// weight positive. An op this build cannot run is refused with
// ErrNotAvailable even at weight 0, so a mix written for a later build
// fails clearly instead of measuring something else.
func ParseMix(s string) (Mix, error) {
	var mix Mix
	seen := map[Op]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		name, weight, ok := strings.Cut(part, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("mix %q: want op=weight pairs separated by commas (e.g. read=90,write=10)", tokenward.Printable(s))
		}
		op := Op(strings.TrimSpace(name))
		if !slices.Contains(Ops, op) {
			return nil, fmt.Errorf("mix: unknown operation %q (want one of %s)", tokenward.Printable(string(op)), opList())
		}
		if op == OpGateway {
			return nil, fmt.Errorf("mix: operation gateway: %w (the gateway is not built yet)", ErrNotAvailable)
		}
		if seen[op] {
			return nil, fmt.Errorf("mix: operation %s given twice", op)
		}
		seen[op] = true
		w, err := strconv.Atoi(strings.TrimSpace(weight))
		if err != nil || w < 0 || w > maxWeight {
			return nil, fmt.Errorf("mix: weight of %s is %q; want a whole number from 0 to %d", op, tokenward.Printable(weight), maxWeight)
		}
		if w > 0 {
			mix = append(mix, Weight{op, w})
		}
	}
	if len(mix) == 0 {
		return nil, fmt.Errorf("mix %q: no operation has a positive weight", tokenward.Printable(s))
	}
	slices.SortFunc(mix, func(a, b Weight) int { return slices.Index(Ops, a.Op) - slices.Index(Ops, b.Op) })
	return mix, nil
}

// String is the mix in ParseMix's syntax: parsing it gives the same mix.
func (m Mix) String() string {
	parts := make([]string, len(m))
	for i, w := range m {
		parts[i] = fmt.Sprintf("%s=%d", w.Op, w.Weight)
	}
	return strings.Join(parts, ",")
}

// Has reports whether op has a positive weight in m.
func (m Mix) Has(op Op) bool {
	return slices.ContainsFunc(m, func(w Weight) bool { return w.Op == op })
}

// schedule is the mix spread over total slots, each op as often as its
// weight says, interleaved (smooth weighted round robin), so every worker
// cycling through it issues the mix in the stated proportions.
func (m Mix) schedule() []Op {
	total := 0
	for _, w := range m {
		total += w.Weight
	}
	// A schedule longer than this only repeats a proportion finer than
	// anyone measures; scale the weights down to fit.
	const maxLen = 1000
	weights := make([]int, len(m))
	n := 0
	for i, w := range m {
		weights[i] = w.Weight
		if total > maxLen {
			weights[i] = max(1, w.Weight*maxLen/total)
		}
		n += weights[i]
	}
	out := make([]Op, 0, n)
	current := make([]int, len(m))
	for range n {
		best := 0
		for i := range m {
			current[i] += weights[i]
			if current[i] > current[best] {
				best = i
			}
		}
		current[best] -= n
		out = append(out, m[best].Op)
	}
	return out
}

func opList() string {
	names := make([]string, len(Ops))
	for i, op := range Ops {
		names[i] = string(op)
	}
	return strings.Join(names, ", ")
}
