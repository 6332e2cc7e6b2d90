package scaler

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/qscale/qscale/scaler/share"
	"github.com/qscale/qscale/scaler/store"
	"github.com/qscale/qscale/sources"
)

// Poll timeouts: a poll may take as long as its interval, within these bounds.
const (
	minPollTimeout = 5 * time.Second
	maxPollTimeout = 30 * time.Second
)

// maxBackoff bounds how far apart the polls of a failing connection move: a broker that is
// down is asked again at least this often, or every interval if that is longer.
const maxBackoff = time.Minute

// backoffJitter is the share by which a backed-off delay is spread, so that the pollers of
// many workloads on one failed broker do not come back to it in step.
const backoffJitter = 0.2

// Poller reads every configured trigger into the Store. Triggers of all workloads are grouped
// by broker connection, and each group is read with one batched poll at the shortest polling
// interval among its workloads; after each poll the workloads it served are passed to Notify.
// A connection whose every trigger failed is polled less and less often (back-off with
// jitter, up to maxBackoff), and at once again when a workload joins it. Its lock is never
// held across I/O: opening, polling and closing sources happen outside it.
type Poller struct {
	pool    *sources.Pool
	store   *store.Store
	notify  func(store.Target)
	metrics *Metrics
	sharing Sharing

	mu      sync.Mutex
	ctx     context.Context // set by Start; groups started before it wait for it
	groups  map[string]*group
	targets map[store.Target]member
}

type group struct {
	key     string // the connection's
	members map[store.Target]member
	wake    chan struct{}
	stop    context.CancelFunc
	failed  int // consecutive polls in which every trigger failed; only run touches it
	// skipped is whether the group's last turn left its connection to another replica;
	// guarded by Poller.mu.
	skipped bool
}

type member struct {
	triggers []sources.Trigger
	interval time.Duration
}

// Sharing is how replicas divide the polling among them.
type Sharing interface {
	// Owns reports whether this replica polls the connection with key now.
	Owns(key string) bool
	// Polled is given the samples of each poll this replica made, for the others; it must
	// not block.
	Polled([]share.Polled)
}

// pollAll is the Sharing of a replica that polls every connection and shares nothing.
type pollAll struct{}

func (pollAll) Owns(string) bool      { return true }
func (pollAll) Polled([]share.Polled) {}

// NewPoller returns a Poller that reads through pool into st. notify may be nil; so may
// sharing, when this replica polls every connection.
func NewPoller(pool *sources.Pool, st *store.Store, notify func(store.Target), metrics *Metrics, sharing Sharing) *Poller {
	if notify == nil {
		notify = func(store.Target) {}
	}
	if sharing == nil {
		sharing = pollAll{}
	}
	return &Poller{pool: pool, store: st, notify: notify, metrics: metrics, sharing: sharing,
		groups: map[string]*group{}, targets: map[store.Target]member{}}
}

// Reshard is called when the connections this replica owns may have changed: it closes those
// it no longer owns and polls at once those it has gained. Those it kept keep their pace: a
// change of members costs their brokers no extra poll.
func (p *Poller) Reshard() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pruneLocked()
	for _, g := range p.groups {
		if !g.skipped || !p.sharing.Owns(g.key) {
			continue
		}
		select {
		case g.wake <- struct{}{}:
		default:
		}
	}
}

// Set makes the Poller read a workload's triggers at interval, replacing what it read for the
// workload before, and reports whether anything changed. Groups that gain the workload poll
// at once. Setting what is already set does nothing: the reconciler calls Set after every
// poll, and waking the group then would poll without pause.
func (p *Poller) Set(t store.Target, triggers []sources.Trigger, interval time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.targets[t]; ok && old.interval == interval && slices.EqualFunc(old.triggers, triggers, sources.Trigger.Equal) {
		return false
	}
	p.removeLocked(t)
	byKey := map[string][]sources.Trigger{}
	for _, tr := range triggers {
		k := tr.Key()
		byKey[k] = append(byKey[k], tr)
	}
	for k, trs := range byKey {
		g, ok := p.groups[k]
		if !ok { // a new group's loop polls as soon as it starts
			g = &group{key: k, members: map[store.Target]member{}, wake: make(chan struct{}, 1)}
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
func (p *Poller) Remove(t store.Target) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removeLocked(t)
	p.pruneLocked()
}

func (p *Poller) removeLocked(t store.Target) {
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

// pruneLocked closes the connections that no workload reads any more, or that another
// replica polls.
func (p *Poller) pruneLocked() {
	var inUse []sources.Trigger
	for _, g := range p.groups {
		if !p.sharing.Owns(g.key) {
			continue
		}
		for _, m := range g.members {
			inUse = append(inUse, m.triggers...)
		}
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
		interval, allFailed := p.pollGroup(ctx, g)
		if allFailed {
			g.failed++
		} else {
			g.failed = 0
		}
		timer.Reset(backoff(interval, g.failed, rand.Float64())) //nolint:gosec // jitter spreads polls; it guards nothing
	}
}

// backoff is the delay before the next poll of a connection whose last failed polls in a
// row failed for every trigger: the interval, doubled for each failure after the first, at
// most max(interval, maxBackoff), spread by ±backoffJitter/2 with r in [0, 1).
func backoff(interval time.Duration, failed int, r float64) time.Duration {
	if failed <= 1 {
		return interval
	}
	limit := max(interval, maxBackoff)
	d := interval
	for i := 1; i < failed && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return time.Duration(float64(d) * (1 + backoffJitter*(r-0.5)))
}

// pollGroup polls every trigger of g once, if this replica owns g's connection. It returns
// the interval until the next poll, and whether every trigger failed.
func (p *Poller) pollGroup(ctx context.Context, g *group) (time.Duration, bool) {
	owned := p.sharing.Owns(g.key)
	p.mu.Lock()
	var triggers []sources.Trigger
	var owners []store.Target
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
	g.skipped = !owned
	p.mu.Unlock()
	if len(triggers) == 0 {
		return time.Hour, false // the group is being removed; ctx ends the loop
	}
	if !owned { // another replica polls it, and sends the samples; Reshard wakes this loop
		return interval, false
	}
	pctx, cancel := context.WithTimeout(ctx, min(max(interval, minPollTimeout), maxPollTimeout))
	start := time.Now()
	samples := p.pool.Poll(pctx, triggers)
	cancel()
	if ctx.Err() != nil {
		return interval, false
	}
	p.metrics.observePoll(triggers[0].Type, time.Since(start).Seconds())
	now := p.store.Now()
	notified := map[store.Target]bool{}
	allFailed := true
	polled := make([]share.Polled, len(samples))
	for i, s := range samples {
		p.store.Record(owners[i], triggers[i], s, now)
		polled[i] = share.Polled{Target: owners[i], Trigger: triggers[i], Sample: s, At: now}
		notified[owners[i]] = true
		allFailed = allFailed && s.Err != nil
	}
	p.sharing.Polled(polled)
	for t := range notified {
		p.notify(t)
	}
	return interval, allFailed
}
