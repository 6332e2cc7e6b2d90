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
	observed float64 // the last interval's arrival rate
	through  float64 // messages per second per ready replica; 0 while unknown
	measured bool    // through comes from a saturated interval, not the seed or a guess
	startup  time.Duration
	pending  time.Time // since when replicas have been waiting to be ready
	peaks    []peak    // recent arrival rates, for the capacity kept warm
}

type peak struct {
	at   time.Time
	rate float64
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
		return
	}
	rate := (p.Produced - prev.Produced) / dt
	r.observed = rate
	if rate >= r.arrival {
		r.arrival = rate
	} else {
		r.arrival = rate + (r.arrival-rate)*math.Exp(-dt/arrivalDecay.Seconds())
	}
	r.rememberPeak(p.Time, rate)
	r.learnThroughput(prev, &p, dt)
}

// learnThroughput updates the per-replica rate from an interval in which the consumers were
// saturated: a backlog waited throughout, and the same replicas were ready at both ends (so
// none was starting). Idle consumers say nothing of what they could do.
func (r *Rates) learnThroughput(prev, p *Poll, dt float64) {
	consumed := (p.Consumed - prev.Consumed) / dt
	saturated := prev.Backlog > 0 && p.Backlog > 0 && prev.Ready == p.Ready && p.Ready > 0 && p.Backlog >= consumed*dt*0.1
	if p.Ready <= 0 || consumed <= 0 {
		return
	}
	perReplica := consumed / float64(p.Ready)
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

func (r *Rates) rememberPeak(at time.Time, rate float64) {
	keep := r.peaks[:0]
	for _, pk := range r.peaks {
		if at.Sub(pk.at) < burstMemory && pk.rate > rate {
			keep = append(keep, pk)
		}
	}
	r.peaks = append(keep, peak{at: at, rate: rate})
}

// recentPeak is the highest arrival rate of the last burstMemory.
func (r *Rates) recentPeak() float64 {
	p := 0.0
	for _, pk := range r.peaks {
		p = max(p, pk.rate)
	}
	return p
}

// reaction is how long it takes, on average, from a change in the arrivals to the replicas it
// calls for being ready: half a polling interval before a poll sees it, half an HPA sync
// period before the HPA acts on it, and a start-up.
func (r *Rates) reaction() time.Duration {
	return r.cfg.PollingInterval/2 + hpaSync/2 + r.startup
}

// Replicas returns the replicas the trigger needs, and false while nothing is known of the
// per-replica rate (no seed and no consumption seen yet).
//
// The capacity asked for is the larger of:
//   - the arrival rate, plus what drains the backlog within drainShare of the target age:
//     the arrival rate alone when the queue is empty, so that a queue that drained never
//     reads as "one replica is enough";
//   - a warm floor: the share of the recent peak arrival rate that keeps the oldest message
//     younger than the target until new replicas are ready, were that peak to come again
//     (none when the loop reacts within the target age). With capacity c against arrivals
//     λ the oldest message ages by 1 − c/λ a second, so c = λ(1 − target/reaction) holds
//     it at the target until the reaction is over.
//
// It is divided by the per-replica rate, with headroom.
func (r *Rates) Replicas() (float64, bool) {
	if r.through <= 0 || r.last == nil {
		return 0, false
	}
	target := r.cfg.Target.Seconds()
	need := r.arrival + r.last.Backlog/(drainShare*target)
	if d := r.reaction().Seconds(); d > target {
		need = max(need, r.recentPeak()*(1-target/d))
	}
	return need / r.through * (1 + headroom), true
}

// Throughput returns the learned per-replica rate (0 while unknown) and the arrival rate.
func (r *Rates) Throughput() (perReplica, arrival float64) { return r.through, r.arrival }
