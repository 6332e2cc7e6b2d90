// Package sim replays an arrival trace through qscale's scaling policy, a model of the
// HorizontalPodAutoscaler that acts on the values the policy serves, and a model of the
// workload's pods (start-up delay, per-replica throughput) draining a FIFO queue, second by
// second. Run is the entry point; Result holds what a run cost and how long messages waited.
package sim

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Trace is a series of arrival rates: Rates[i] messages per second from Start[i] until the
// next start (or Step after the last).
type Trace struct {
	Start []float64 // seconds from the trace's start, increasing
	Rates []float64 // messages per second, ≥ 0
}

// ReadTrace reads a CSV with the header t_seconds,arrivals_per_second.
func ReadTrace(r io.Reader) (Trace, error) {
	var tr Trace
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		if line == 1 {
			if text != "t_seconds,arrivals_per_second" {
				return Trace{}, fmt.Errorf("line 1: want the header t_seconds,arrivals_per_second, got %q", text)
			}
			continue
		}
		ts, rs, ok := strings.Cut(text, ",")
		t, err1 := strconv.ParseFloat(ts, 64)
		rate, err2 := strconv.ParseFloat(rs, 64)
		switch {
		case !ok || err1 != nil || err2 != nil:
			return Trace{}, fmt.Errorf("line %d: want two numbers, got %q", line, text)
		case rate < 0 || math.IsNaN(rate) || math.IsInf(rate, 0):
			return Trace{}, fmt.Errorf("line %d: arrival rate %v is not a finite number ≥ 0", line, rate)
		case len(tr.Start) > 0 && t <= tr.Start[len(tr.Start)-1]:
			return Trace{}, fmt.Errorf("line %d: t_seconds %v does not increase", line, t)
		}
		tr.Start, tr.Rates = append(tr.Start, t), append(tr.Rates, rate)
	}
	if err := sc.Err(); err != nil {
		return Trace{}, err
	}
	if len(tr.Start) < 2 {
		return Trace{}, errors.New("a trace needs at least two rows")
	}
	return tr, nil
}

// Step is the length of the last bucket: that of the one before it.
func (t Trace) Step() float64 { return t.Start[len(t.Start)-1] - t.Start[len(t.Start)-2] }

// Duration is the trace's length in seconds.
func (t Trace) Duration() float64 { return t.Start[len(t.Start)-1] - t.Start[0] + t.Step() }

// Peak is the highest rate of the trace.
func (t Trace) Peak() float64 {
	p := 0.0
	for _, r := range t.Rates {
		p = max(p, r)
	}
	return p
}

// Scaled returns the trace with every rate multiplied by f.
func (t Trace) Scaled(f float64) Trace {
	out := Trace{Start: t.Start, Rates: make([]float64, len(t.Rates))}
	for i, r := range t.Rates {
		out.Rates[i] = r * f
	}
	return out
}

// perSecond returns the arrivals in each second of the trace.
func (t Trace) perSecond() []float64 {
	n := int(math.Ceil(t.Duration()))
	out := make([]float64, n)
	j := 0
	for s := range n {
		at := t.Start[0] + float64(s)
		for j+1 < len(t.Start) && t.Start[j+1] <= at {
			j++
		}
		out[s] = t.Rates[j]
	}
	return out
}
