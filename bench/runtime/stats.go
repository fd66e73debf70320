package main

import (
	"math"
	"sort"
)

// summary holds the order statistics the report prints.
type summary struct {
	Median float64 `json:"median"`
	P10    float64 `json:"p10"`
	P90    float64 `json:"p90"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// percentile interpolates linearly between the closest ranks of sorted
// (numpy's default), so p=0.5 is the usual median.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	pos := p * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	frac := pos - float64(lo)
	return sorted[lo] + (sorted[hi]-sorted[lo])*frac
}

func summarize(xs []float64) summary {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		nan := math.NaN()
		return summary{nan, nan, nan, nan, nan}
	}
	return summary{
		Median: percentile(s, 0.5),
		P10:    percentile(s, 0.1),
		P90:    percentile(s, 0.9),
		Min:    s[0],
		Max:    s[len(s)-1],
	}
}
