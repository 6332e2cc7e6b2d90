package scaler

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/qscale/qscale/sources"
)

// Poll timeouts: a poll may take as long as its interval, within these bounds.
const (
	minPollTimeout = 5 * time.Second
	maxPollTimeout = 30 * time.Second
)

// Poller reads every configured trigger into the Store. Triggers of all workloads are grouped
// by broker connection, and each group is read with one batched poll at the shortest polling
// interval among its workloads; after each poll the workloads it served are passed to Notify.
type Poller struct {
	pool    *sources.Pool
	store   *Store
	notify  func(Target)
	metrics *Metrics

	mu      sync.Mutex
	ctx     context.Context // set by Start; groups started before it wait for it
	groups  map[string]*group
	targets map[Target]member
}

type group struct {
	members map[Target]member
	wake    chan struct{}
	stop    context.CancelFunc
}

type member struct {
	triggers []sources.Trigger
	interval time.Duration
}

// NewPoller returns a Poller that reads through pool into store. notify may be nil.
func NewPoller(pool *sources.Pool, store *Store, notify func(Target), metrics *Metrics) *Poller {
	if notify == nil {
		notify = func(Target) {}
	}
	return &Poller{pool: pool, store: store, notify: notify, metrics: metrics,
		groups: map[string]*group{}, targets: map[Target]member{}}
}

// Set makes the Poller read a workload's triggers at interval, replacing what it read for the
// workload before, and reports whether anything changed. Groups that gain the workload poll
// at once. Setting what is already set does nothing: the reconciler calls Set after every
// poll, and waking the group then would poll without pause.
func (p *Poller) Set(t Target, triggers []sources.Trigger, interval time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.targets[t]; ok && old.interval == interval && slices.Equal(old.triggers, triggers) {
		return false
	}
	p.removeLocked(t)
	byKey := map[string][]sources.Trigger{}
	for _, tr := range triggers {
		k := sources.ConnectionKey(tr)
		byKey[k] = append(byKey[k], tr)
	}
	for k, trs := range byKey {
		g, ok := p.groups[k]
		if !ok { // a new group's loop polls as soon as it starts
			g = &group{members: map[Target]member{}, wake: make(chan struct{}, 1)}
			p.groups[k] = g
			g.members[t] = member{triggers: trs, interval: interval}
			p.startLocked(g)
			continue
		}
		g.members[t] = member{triggers: trs, interval: interval}
		select {
		case g.wake <- struct{}{}:
		default:
		}
	}
	p.targets[t] = member{triggers: triggers, interval: interval}
	p.pruneLocked()
	return true
}

// Remove stops reading a workload's triggers.
func (p *Poller) Remove(t Target) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removeLocked(t)
	p.pruneLocked()
}

func (p *Poller) removeLocked(t Target) {
	delete(p.targets, t)
	for k, g := range p.groups {
		delete(g.members, t)
		if len(g.members) == 0 {
			if g.stop != nil {
				g.stop()
			}
			delete(p.groups, k)
		}
	}
}

// pruneLocked closes the connections that no workload reads any more.
func (p *Poller) pruneLocked() {
	var inUse []sources.Trigger
	for _, m := range p.targets {
		inUse = append(inUse, m.triggers...)
	}
	p.pool.Prune(inUse)
}

// Start runs the polling loops until ctx ends, then closes every connection. It implements
// controller-runtime's manager.Runnable.
func (p *Poller) Start(ctx context.Context) error {
	p.mu.Lock()
	p.ctx = ctx
	for _, g := range p.groups {
		p.startLocked(g)
	}
	p.mu.Unlock()
	<-ctx.Done()
	p.mu.Lock()
	for _, g := range p.groups {
		g.stop()
	}
	p.mu.Unlock()
	p.pool.Close()
	return nil
}

func (p *Poller) startLocked(g *group) {
	if p.ctx == nil || g.stop != nil {
		return
	}
	ctx, cancel := context.WithCancel(p.ctx)
	g.stop = cancel
	go p.run(ctx, g)
}

// run polls one connection's triggers until ctx ends: at once, then every interval, and again
// at once when a workload joins.
func (p *Poller) run(ctx context.Context, g *group) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-g.wake:
			timer.Stop()
		}
		interval := p.pollGroup(ctx, g)
		timer.Reset(interval)
	}
}

// pollGroup polls every trigger of g once and returns the interval until the next poll.
func (p *Poller) pollGroup(ctx context.Context, g *group) time.Duration {
	p.mu.Lock()
	var triggers []sources.Trigger
	var owners []Target
	interval := time.Duration(0)
	for t, m := range g.members {
		triggers = append(triggers, m.triggers...)
		for range m.triggers {
			owners = append(owners, t)
		}
		if interval == 0 || m.interval < interval {
			interval = m.interval
		}
	}
	p.mu.Unlock()
	if len(triggers) == 0 {
		return time.Hour // the group is being removed; ctx ends the loop
	}
	pctx, cancel := context.WithTimeout(ctx, min(max(interval, minPollTimeout), maxPollTimeout))
	start := time.Now()
	samples := p.pool.Poll(pctx, triggers)
	cancel()
	if ctx.Err() != nil {
		return interval
	}
	p.metrics.observePoll(triggers[0].Type, time.Since(start).Seconds())
	now := p.store.now()
	notified := map[Target]bool{}
	for i, s := range samples {
		p.store.Record(owners[i], triggers[i], s, now)
		notified[owners[i]] = true
	}
	for t := range notified {
		p.notify(t)
	}
	return interval
}
