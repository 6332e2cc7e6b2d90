package sources

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"sync"
)

// Pool owns one Source per connection and polls triggers through them.
//
// Nothing a Source does can stop the Pool's caller: a panic in Open, Poll or Close becomes
// that poll's error (the Source is then dropped and opened afresh next time), and sources
// that are no longer used are closed in the background, so a broker that is slow to hang up
// never holds up the caller of Prune.
type Pool struct {
	reg     Registry
	onPanic func(typ string, recovered any, stack []byte)

	mu      sync.Mutex
	open    map[string]*pooled
	closing sync.WaitGroup
}

type pooled struct {
	mu     sync.Mutex // serialises Poll and Close: a Source is never used concurrently
	src    Source
	err    error // Open's error; the next Poll retries
	closed bool  // pruned: a Poll that raced with Prune takes a fresh entry
}

// PoolOption configures a Pool.
type PoolOption func(*Pool)

// OnPanic sets the function told of every panic a Source raised (for a metric and a log
// line); the panic itself has already become the poll's error.
func OnPanic(fn func(typ string, recovered any, stack []byte)) PoolOption {
	return func(p *Pool) { p.onPanic = fn }
}

// NewPool returns a Pool that opens sources of the kinds in reg.
func NewPool(reg Registry, opts ...PoolOption) *Pool {
	p := &Pool{reg: reg, open: make(map[string]*pooled), onPanic: func(string, any, []byte) {}}
	for _, o := range opts {
		o(p)
	}
	return p
}

// ErrSourcePanicked marks the error of a poll whose Source panicked.
var ErrSourcePanicked = errors.New("the source failed unexpectedly while reading the broker's answer")

// Poll reads every trigger and returns one Sample per trigger, in order. Triggers that share
// a connection are read with one Source.Poll; different connections are read concurrently.
// Every Sample's error names its trigger, and a value or count that is not a finite number
// of at least 0, or a backlog-age trigger's sample without Counters, becomes an error rather
// than reaching a scaling decision: no value is ever made into a 0 here.
func (p *Pool) Poll(ctx context.Context, triggers []Trigger) []Sample {
	samples := make([]Sample, len(triggers))
	groups := make(map[string][]int)
	var order []string
	for i, t := range triggers {
		k := t.Key()
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
		_, counted := BacklogAgeOf(triggers[i].Config)
		samples[i] = sanitize(samples[i], counted)
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
	cfgs := make([]Config, len(idx))
	for j, i := range idx {
		cfgs[j] = triggers[i].Config
	}
	got, err := p.pollEntry(ctx, e, first, cfgs)
	if err != nil {
		for _, i := range idx {
			out[i] = Sample{Err: err}
		}
		return
	}
	for j, i := range idx {
		if j < len(got) {
			out[i] = got[j]
		} else {
			out[i] = Sample{Err: errors.New("source returned no sample")}
		}
	}
}

// pollEntry opens e's Source if need be and polls it; e.mu is held. A panic becomes the
// error of the whole poll, and the Source is dropped: its state may be half updated.
func (p *Pool) pollEntry(ctx context.Context, e *pooled, first Trigger, cfgs []Config) (got []Sample, err error) {
	defer func() {
		if r := recover(); r != nil {
			p.onPanic(first.Type, r, debug.Stack())
			if e.src != nil {
				src := e.src
				e.src = nil
				p.closeInBackground(first.Type, src)
			}
			got, err = nil, fmt.Errorf("%w (%v)", ErrSourcePanicked, r)
		}
	}()
	if e.src == nil {
		kind, ok := p.reg[first.Type]
		if !ok {
			return nil, fmt.Errorf("unknown trigger type %q", first.Type)
		}
		if e.src, e.err = kind.Open(first.Config); e.src == nil {
			return nil, e.err
		}
	}
	return e.src.Poll(ctx, cfgs), nil
}

func (p *Pool) entry(t Trigger) *pooled {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := t.Key()
	e, ok := p.open[k]
	if !ok {
		e = &pooled{}
		p.open[k] = e
	}
	return e
}

// sanitize turns a sample whose figures cannot be scaled on into an error; counted says
// that the trigger scales on backlog age, and so needs Counters.
func sanitize(s Sample, counted bool) Sample {
	if s.Err != nil {
		return s
	}
	fail := func(format string, args ...any) Sample {
		return Sample{Err: fmt.Errorf(format, args...), Warnings: s.Warnings}
	}
	if !countable(s.Value) {
		return fail("source returned %v, not a finite number of at least 0", s.Value)
	}
	if !counted {
		s.Counters = nil // the contract of Sample: counts only for backlog-age triggers
		return s
	}
	c := s.Counters
	if c == nil {
		return fail("source returned no message counts for a trigger with %s", BacklogAgeParam)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"backlog", c.Backlog}, {"produced count", c.Produced}, {"consumed count", c.Consumed}} {
		if !countable(f.v) {
			return fail("source returned %s %v, not a finite number of at least 0", f.name, f.v)
		}
	}
	return s
}

// countable reports whether v is a finite number of at least 0.
func countable(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) && v >= 0 }

// Prune closes the sources that none of inUse is read through. It returns at once: each
// source is closed in the background once its poll in flight, if any, has ended.
func (p *Pool) Prune(inUse []Trigger) {
	keep := make(map[string]bool, len(inUse))
	for _, t := range inUse {
		keep[t.Key()] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, e := range p.open {
		if !keep[k] {
			delete(p.open, k)
			p.closing.Go(func() { p.closeEntry(k, e) })
		}
	}
}

// Len returns the number of connections the Pool holds.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.open)
}

// Close closes every source and waits until all are closed.
func (p *Pool) Close() {
	p.Prune(nil)
	p.closing.Wait()
}

func (p *Pool) closeEntry(key string, e *pooled) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	if e.src != nil {
		src := e.src
		e.src = nil
		p.closeSource(typeOfKey(key), src)
	}
}

func (p *Pool) closeInBackground(typ string, src Source) {
	p.closing.Go(func() { p.closeSource(typ, src) })
}

// closeSource closes src; a panic in Close is reported and goes no further.
func (p *Pool) closeSource(typ string, src Source) {
	defer func() {
		if r := recover(); r != nil {
			p.onPanic(typ, r, debug.Stack())
		}
	}()
	_ = src.Close()
}

// typeOfKey returns the trigger type a connection key starts with.
func typeOfKey(key string) string {
	for i := range len(key) {
		if key[i] == 0 {
			return key[:i]
		}
	}
	return key
}
