package main

import (
	"fmt"
	"slices"
	"testing"
)

func TestPermutations(t *testing.T) {
	tests := []struct {
		n    int
		want [][]int
	}{
		{1, [][]int{{0}}},
		{2, [][]int{{0, 1}, {1, 0}}},
		{3, [][]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}},
	}
	for _, tc := range tests {
		if got := permutations(tc.n); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("permutations(%d) = %v; want %v", tc.n, got, tc.want)
		}
	}
	// Over all orders of three arms, each arm runs right after each other
	// one equally often: no arm inherits another's leftovers more.
	after := map[[2]int]int{}
	for _, p := range permutations(3) {
		for i := 1; i < len(p); i++ {
			after[[2]int{p[i-1], p[i]}]++
		}
	}
	for pair, n := range after {
		if n != 2 {
			t.Errorf("%d right after %d in %d orders; want 2", pair[1], pair[0], n)
		}
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		xs   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{0.9, 1.1}, 1},
	}
	for _, tc := range tests {
		if got := median(slices.Clone(tc.xs)); got != tc.want {
			t.Errorf("median(%v) = %v; want %v", tc.xs, got, tc.want)
		}
	}
}
