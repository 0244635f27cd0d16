package console

import "strconv"

// barChart is a bar chart drawn as inline SVG by the server (templates/
// chart.html): presentation attributes only, no style and no script, so
// the Content-Security-Policy holds.
type barChart struct {
	Label         string // what the chart shows, for screen readers
	Width, Height int
	Bars          []bar
	Max           int
	Ticks         []tick
}

type bar struct {
	X, Y, W, H int
	Title      string // the bar's label and value, shown on hover and read out
}

type tick struct {
	X    int
	Text string
}

const (
	chartWidth   = 640
	chartHeight  = 160
	chartBottom  = 20 // room for the tick labels
	chartMaxBars = 100
)

// newBarChart draws values (one bar each, labelled labels[i]); every
// tickEvery'th label is written under the axis.
func newBarChart(label string, values []int, labels []string, tickEvery int) *barChart {
	values = values[:min(len(values), chartMaxBars)]
	ch := &barChart{Label: label, Width: chartWidth, Height: chartHeight}
	for _, v := range values {
		ch.Max = max(ch.Max, v)
	}
	if len(values) == 0 {
		return ch
	}
	slot := chartWidth / len(values)
	plot := chartHeight - chartBottom
	for i, v := range values {
		h := 0
		if ch.Max > 0 {
			h = v * (plot - 4) / ch.Max
		}
		if v > 0 && h < 2 {
			h = 2 // a non-zero bar stays visible
		}
		ch.Bars = append(ch.Bars, bar{X: i*slot + 1, Y: plot - h, W: max(slot-2, 1), H: h, Title: labels[i] + ": " + strconv.Itoa(v)})
		// A tick label needs about 80 units: none that would run off the end.
		if tickEvery > 0 && i%tickEvery == 0 && i*slot+80 <= chartWidth {
			ch.Ticks = append(ch.Ticks, tick{X: i*slot + 1, Text: labels[i]})
		}
	}
	return ch
}
