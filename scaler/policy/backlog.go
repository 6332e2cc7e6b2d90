package policy

import (
	"math"
	"time"
)

// BacklogAge configures a trigger that keeps the oldest waiting message younger than Target,
// sized from the rate messages arrive at and the rate one replica consumes them at, both
// learned from successive polls.
type BacklogAge struct {
	// Target is the age the oldest waiting message should stay below.
	Target time.Duration
	// ReplicaThroughput seeds the messages per second one replica consumes; 0 learns it
	// from scratch.
	ReplicaThroughput float64
	// PollingInterval is how often the trigger is read.
	PollingInterval time.Duration
}

// Poll is what one poll of a backlog-age trigger read, with the workload's replicas then.
type Poll struct {
	Time time.Time
	// Backlog is the messages waiting; Produced and Consumed count the messages ever
	// produced to and consumed from the trigger's scope (counters: only a reset lowers them).
	Backlog, Produced, Consumed float64
	// Consumers, when above 0, is the most replicas that can consume at once (a Kafka
	// topic's partitions): more are idle.
	Consumers int32
	// Ready is the replicas ready to consume; Replicas the workload's spec.replicas.
	Ready, Replicas int32
}

// The model's constants. They are properties of the mechanism (how fast the loop can act,
// how noisy rates are), not fitted to a trace.
const (
	// hpaSync is the HPA controller's default sync period: part of the delay between a
	// decision and the replicas it asks for.
	hpaSync = 15 * time.Second
	// defaultStartup is the replicas' start-up delay assumed until one is seen.
	defaultStartup = 30 * time.Second
	// drainShare: a backlog is to be consumed within this share of the target age.
	drainShare = 1.0
	// headroom is capacity kept above the estimated need, for the noise in both rates.
	headroom = 0.05
	// arrivalDecay is the time constant by which the arrival estimate follows a falling rate
	// (a rising one is followed at once).
	arrivalDecay = 30 * time.Second
	// burstMemory is how long a burst's arrival rate is remembered to size the capacity kept
	// warm.
	burstMemory = 5 * time.Minute
	// throughputWeight is the weight of a new saturated measurement in the per-replica rate.
	throughputWeight = 0.3
	// throughputRange bounds the learned per-replica rate around the seed, when there is one.
	throughputRange = 4.0
)

// Rates learns a backlog-age trigger's arrival rate and per-replica throughput from
// successive polls, and sizes the replicas that keep the backlog younger than the target.
// The zero value is not usable: use NewRates.
type Rates struct {
	cfg BacklogAge

	last     *Poll
	arrival  float64 // messages per second, rising at once, falling with arrivalDecay
	rated    bool    // arrival is measured: two polls with sound counters were seen
	through  float64 // messages per second per ready replica; 0 while unknown
	measured bool    // through comes from a saturated interval, not the seed or a guess
	startup  time.Duration
	pending  time.Time // since when replicas have been waiting to be ready
	history  []count   // the produced counter over the last burstMemory, for the warm floor
	floor    float64   // the warm capacity the bursts in history call for
}

// count is a counter's value at a poll.
type count struct {
	at time.Time
	n  float64
}

// NewRates returns the state of a trigger configured by cfg.
func NewRates(cfg BacklogAge) *Rates {
	return &Rates{cfg: cfg, through: cfg.ReplicaThroughput, startup: defaultStartup}
}

// Observe takes the next poll into account. Polls must come in time order; a counter that
// went down (a topic recreated, a queue deleted) starts the rates afresh from this poll.
func (r *Rates) Observe(p Poll) {
	defer func() { r.last = &p }()
	r.learnStartup(p)
	prev := r.last
	if prev == nil {
		return
	}
	dt := p.Time.Sub(prev.Time).Seconds()
	if dt <= 0 || p.Produced < prev.Produced || p.Consumed < prev.Consumed {
		r.history = append(r.history[:0], count{at: p.Time, n: p.Produced})
		return
	}
	rate := (p.Produced - prev.Produced) / dt
	r.rated = true
	if rate >= r.arrival {
		r.arrival = rate
	} else {
		r.arrival = rate + (r.arrival-rate)*math.Exp(-dt/arrivalDecay.Seconds())
	}
	r.rememberProduced(p)
	r.floor = r.warmFloor()
	r.learnThroughput(prev, &p, dt)
}

// learnThroughput updates the per-replica rate from an interval in which the consumers were
// saturated: a backlog waited throughout, and the same replicas were ready at both ends (so
// none was starting). Idle consumers say nothing of what they could do.
func (r *Rates) learnThroughput(prev, p *Poll, dt float64) {
	consumed := (p.Consumed - prev.Consumed) / dt
	saturated := prev.Backlog > 0 && p.Backlog > 0 && p.Backlog >= consumed*dt*0.1
	if p.Ready <= 0 || prev.Ready != p.Ready || consumed <= 0 {
		// A replica that became ready (or went) within the interval consumed for part of
		// it only: the interval says nothing of what one replica does.
		return
	}
	perReplica := consumed / float64(consuming(p.Ready, p.Consumers))
	switch {
	case saturated && r.measured:
		r.through += throughputWeight * (perReplica - r.through)
	case saturated:
		r.through, r.measured = perReplica, true
	case !r.measured && perReplica > r.through && r.cfg.ReplicaThroughput == 0:
		// Unsaturated consumers did at least this much: a floor, until a measurement.
		r.through = perReplica
	}
	if seed := r.cfg.ReplicaThroughput; seed > 0 {
		r.through = min(max(r.through, seed/throughputRange), seed*throughputRange)
	}
}

// consuming is how many of ready replicas consume, when at most consumers can.
func consuming(ready, consumers int32) int32 {
	if consumers > 0 {
		return min(ready, consumers)
	}
	return ready
}

// learnStartup measures how long new replicas take to become ready: from the first poll that
// sees fewer ready replicas than asked for to the first that sees them all ready.
func (r *Rates) learnStartup(p Poll) {
	switch {
	case p.Ready < p.Replicas && r.pending.IsZero():
		r.pending = p.Time
	case p.Ready >= p.Replicas && !r.pending.IsZero():
		seen := p.Time.Sub(r.pending)
		r.startup += (seen - r.startup) / 2
		r.pending = time.Time{}
	}
}

// historySpacing is the least time between two counts the history keeps (the newest count
// replaces a last one closer than that to the one before): bursts much shorter than the
// loop's reaction call for little warm capacity, so the history need not resolve them, and
// its size stays bounded however short the polling interval.
func (r *Rates) historySpacing() time.Duration { return r.reaction() / 8 }

func (r *Rates) rememberProduced(p Poll) {
	h := r.history
	if n := len(h); n >= 2 && p.Time.Sub(h[n-2].at) < r.historySpacing() {
		h = h[:n-1]
	}
	h = append(h, count{at: p.Time, n: p.Produced})
	for len(h) > 2 && p.Time.Sub(h[0].at) > burstMemory+r.reaction() {
		h = h[1:]
	}
	r.history = h
}

// warmFloor is the capacity that keeps the oldest message younger than the target through
// any burst of the last burstMemory, were it to come again. Any span between two counts of
// the history is such a burst, of mean rate λ and length D. Against capacity c, a burst that
// ends before the loop has reacted ages its oldest message by D(λ/c − 1) by the time it is
// drained: c = λ·D/(D + target) keeps that at the target. One that outlasts the reaction R
// ages it by R(1 − c/λ) before new replicas are ready: c = λ(1 − target/R). Short bursts
// thus call for a small share of their rate, and none does when the loop reacts within the
// target.
func (r *Rates) warmFloor() float64 {
	target, react := r.cfg.Target.Seconds(), r.reaction().Seconds()
	limit := 1 - target/react
	if limit <= 0 {
		return 0
	}
	h := r.history
	floor := 0.0
	for j := 1; j < len(h); j++ {
		for i := j - 1; i >= 0; i-- {
			d := h[j].at.Sub(h[i].at).Seconds()
			if d > 0 {
				floor = max(floor, (h[j].n-h[i].n)/d*min(d/(d+target), limit))
			}
			if d >= react {
				break
			}
		}
	}
	return floor
}

// reaction is how long it takes, on average, from a change in the arrivals to the replicas it
// calls for being ready: half a polling interval before a poll sees it, half an HPA sync
// period before the HPA acts on it, and a start-up.
func (r *Rates) reaction() time.Duration {
	return r.cfg.PollingInterval/2 + hpaSync/2 + r.startup
}

// Replicas returns the replicas the trigger needs, and false while they cannot be known: no
// per-replica rate yet (no seed and no consumption seen), unless nothing arrives nor waits.
//
// The capacity asked for is the larger of:
//   - the arrival rate, plus what drains the backlog within drainShare of the target age,
//     with headroom for the noise in both rates: the arrival rate alone when the queue is
//     empty, so that a queue that drained never reads as "one replica is enough";
//   - a warm floor: the capacity that keeps the oldest message younger than the target
//     through any burst of the last burstMemory until new replicas are ready, were it to
//     come again (none when the loop reacts within the target age; see warmFloor). It is
//     sized for a burst already measured, so it takes no headroom.
//
// It is divided by the per-replica rate, and capped at the replicas that can consume at once
// (Poll.Consumers), if any: a Kafka topic's partitions.
func (r *Rates) Replicas() (float64, bool) {
	if r.last == nil {
		return 0, false
	}
	target := r.cfg.Target.Seconds()
	need := r.arrival + r.last.Backlog/(drainShare*target)
	if r.through <= 0 {
		// Nothing arrived since the last poll, nothing waits and no recent burst calls for
		// warm capacity: that needs no replica, whatever one replica can do.
		return 0, r.rated && need == 0 && r.floor == 0
	}
	n := max(need*(1+headroom), r.floor) / r.through
	if c := r.last.Consumers; c > 0 {
		n = min(n, float64(c)) // more would be idle
	}
	return n, true
}

// Throughput returns the learned per-replica rate (0 while unknown) and the arrival rate.
func (r *Rates) Throughput() (perReplica, arrival float64) { return r.through, r.arrival }
