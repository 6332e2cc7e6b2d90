package sources

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
)

// Pool owns one Source per connection and polls triggers through them.
type Pool struct {
	reg Registry

	mu   sync.Mutex
	open map[string]*pooled
}

type pooled struct {
	mu     sync.Mutex // serialises Poll and Close: a Source is never used concurrently
	src    Source
	err    error // Open's error; the next Poll retries
	closed bool  // pruned: a Poll that raced with Prune takes a fresh entry
}

// NewPool returns a Pool that opens sources of the kinds in reg.
func NewPool(reg Registry) *Pool {
	return &Pool{reg: reg, open: make(map[string]*pooled)}
}

// ConnectionKey identifies the connection a trigger is read over: triggers with equal keys
// share one Source.
func ConnectionKey(t Trigger) string { return t.Type + "\x00" + t.Config.Connection() }

// Poll reads every trigger and returns one Sample per trigger, in order. Triggers that share
// a connection are read with one Source.Poll; different connections are read concurrently.
// Every Sample's error names its trigger, and a value that is not a finite number becomes an
// error rather than reaching a scaling decision; a negative value is clamped to 0.
func (p *Pool) Poll(ctx context.Context, triggers []Trigger) []Sample {
	samples := make([]Sample, len(triggers))
	groups := make(map[string][]int)
	var order []string
	for i, t := range triggers {
		k := ConnectionKey(t)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	var wg sync.WaitGroup
	for _, k := range order {
		idx := groups[k]
		wg.Go(func() {
			p.pollGroup(ctx, triggers, idx, samples)
		})
	}
	wg.Wait()
	for i := range samples {
		samples[i] = sanitize(samples[i])
		if samples[i].Err != nil {
			samples[i].Err = fmt.Errorf("trigger %q: %w", triggers[i].Name, samples[i].Err)
		}
	}
	return samples
}

func (p *Pool) pollGroup(ctx context.Context, triggers []Trigger, idx []int, out []Sample) {
	first := triggers[idx[0]]
	e := p.entry(first)
	e.mu.Lock()
	for e.closed {
		e.mu.Unlock()
		e = p.entry(first)
		e.mu.Lock()
	}
	defer e.mu.Unlock()
	if e.src == nil {
		kind, ok := p.reg[first.Type]
		if !ok {
			e.err = fmt.Errorf("unknown trigger type %q", first.Type)
		} else {
			e.src, e.err = kind.Open(first.Config)
		}
	}
	if e.src == nil {
		for _, i := range idx {
			out[i] = Sample{Err: e.err}
		}
		return
	}
	cfgs := make([]Config, len(idx))
	for j, i := range idx {
		cfgs[j] = triggers[i].Config
	}
	got := e.src.Poll(ctx, cfgs)
	for j, i := range idx {
		if j < len(got) {
			out[i] = got[j]
		} else {
			out[i] = Sample{Err: errors.New("source returned no sample")}
		}
	}
}

func (p *Pool) entry(t Trigger) *pooled {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := ConnectionKey(t)
	e, ok := p.open[k]
	if !ok {
		e = &pooled{}
		p.open[k] = e
	}
	return e
}

func sanitize(s Sample) Sample {
	if s.Err != nil {
		return s
	}
	switch {
	case math.IsNaN(s.Value) || math.IsInf(s.Value, 0):
		return Sample{Err: fmt.Errorf("source returned %v, not a finite number", s.Value), Warnings: s.Warnings}
	case s.Value < 0:
		s.Value = 0
	}
	return s
}

// Prune closes the sources that none of inUse is read through.
func (p *Pool) Prune(inUse []Trigger) {
	keep := make(map[string]bool, len(inUse))
	for _, t := range inUse {
		keep[ConnectionKey(t)] = true
	}
	p.mu.Lock()
	var closing []*pooled
	for k, e := range p.open {
		if !keep[k] {
			closing = append(closing, e)
			delete(p.open, k)
		}
	}
	p.mu.Unlock()
	for _, e := range closing {
		e.close()
	}
}

// Len returns the number of connections the Pool holds.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.open)
}

// Close closes every source.
func (p *Pool) Close() { p.Prune(nil) }

func (e *pooled) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	if e.src != nil {
		_ = e.src.Close()
		e.src = nil
	}
}
