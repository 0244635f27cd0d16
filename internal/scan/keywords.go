package scan

import "fmt"

// keywordDFA is an Aho-Corasick automaton compiled to a dense,
// ASCII-case-insensitive DFA over byte classes. The scanning loop is one table
// load per byte with no calls: the library automaton dispatches through an
// interface per byte and was measured 3-4x slower on source trees
// (BenchmarkKeywords).
type keywordDFA struct {
	class  [256]uint8 // byte → class; class 0 is "no keyword has this byte"
	nclass int
	trans  []uint16 // state*nclass + class → next state; uint16 halves the cache footprint

	outs    [][]int32 // state → keyword indexes ending here (incl. via suffix links)
	lens    []int     // keyword index → length
	hasOuts []bool
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// maxKeywordStates bounds the automaton so a state fits the uint16 table.
const maxKeywordStates = 1 << 16

func newKeywordDFA(keywords []string) (*keywordDFA, error) {
	d := &keywordDFA{}
	// Byte classes: one per distinct (lower-cased) keyword byte.
	next := uint8(1)
	for _, k := range keywords {
		for i := 0; i < len(k); i++ {
			c := lowerASCII(k[i])
			if d.class[c] == 0 {
				d.class[c] = next
				next++
			}
		}
	}
	for c := 'A'; c <= 'Z'; c++ {
		d.class[c] = d.class[c+'a'-'A']
	}
	d.nclass = int(next)
	// Trie.
	type node struct {
		next map[uint8]int32
		fail int32
		out  []int32
	}
	nodes := []node{{next: map[uint8]int32{}}}
	for ki, k := range keywords {
		s := int32(0)
		for i := 0; i < len(k); i++ {
			cl := d.class[lowerASCII(k[i])]
			n, ok := nodes[s].next[cl]
			if !ok {
				n = int32(len(nodes)) // #nosec G115 -- len(nodes) is checked against maxKeywordStates (1<<16) below; 2^31 states would not fit in memory first
				nodes = append(nodes, node{next: map[uint8]int32{}})
				nodes[s].next[cl] = n
			}
			s = n
		}
		nodes[s].out = append(nodes[s].out, int32(ki))
		d.lens = append(d.lens, len(k))
	}
	// Breadth-first failure links and the dense table.
	if len(nodes) > maxKeywordStates {
		return nil, fmt.Errorf("rule keywords need %d automaton states; at most %d are supported (fewer or shorter keywords)", len(nodes), maxKeywordStates)
	}
	d.trans = make([]uint16, len(nodes)*d.nclass)
	queue := []int32{}
	for cl := 0; cl < d.nclass; cl++ {
		if n, ok := nodes[0].next[uint8(cl)]; ok && cl != 0 {
			nodes[n].fail = 0
			d.trans[cl] = uint16(n) // #nosec G115 -- len(nodes) <= maxKeywordStates (1<<16) is checked above, so ids fit uint16
			queue = append(queue, n)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		nodes[s].out = append(nodes[s].out, nodes[nodes[s].fail].out...)
		for cl := 0; cl < d.nclass; cl++ {
			if cl == 0 {
				continue // class 0 always returns to the root (trans is 0)
			}
			if n, ok := nodes[s].next[uint8(cl)]; ok {
				nodes[n].fail = int32(d.trans[int(nodes[s].fail)*d.nclass+cl])
				d.trans[int(s)*d.nclass+cl] = uint16(n) // #nosec G115 -- len(nodes) <= maxKeywordStates (1<<16) is checked above, so ids fit uint16
				queue = append(queue, n)
			} else {
				d.trans[int(s)*d.nclass+cl] = d.trans[int(nodes[s].fail)*d.nclass+cl]
			}
		}
	}
	d.outs = make([][]int32, len(nodes))
	d.hasOuts = make([]bool, len(nodes))
	for i := range nodes {
		d.outs[i] = nodes[i].out
		d.hasOuts[i] = len(nodes[i].out) > 0
	}
	return d, nil
}

// scan calls hit(keyword, start, end) for every occurrence of every keyword
// in data, overlapping ones included, in order of their end.
func (d *keywordDFA) scan(data []byte, hit func(k, start, end int)) {
	if len(d.lens) == 0 {
		return
	}
	trans, class, nclass, has := d.trans, &d.class, d.nclass, d.hasOuts
	s := 0
	for i, c := range data {
		s = int(trans[s*nclass+int(class[c])])
		if has[s] {
			for _, k := range d.outs[s] {
				hit(int(k), i+1-d.lens[k], i+1)
			}
		}
	}
}
