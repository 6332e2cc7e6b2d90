package sim

import (
	"errors"
	"math"
	"sort"
	"time"
)

// Observation is what one poll of the trigger reads, and the workload's replicas then.
type Observation struct {
	Time     time.Duration // since the start of the run
	Backlog  float64       // messages waiting
	Produced float64       // messages produced since the start (a counter)
	Consumed float64       // messages consumed since the start (a counter)
	Ready    int32         // replicas ready to consume
	Replicas int32         // the workload's replicas (spec.replicas)
}

// Served is what qscale serves the HPA after a poll, and what it writes itself.
type Served struct {
	// Value is the metric's value and Target its AverageValue target in the HPA; OK false
	// means no value is served (the HPA then keeps the workload's size).
	Value, Target float64
	OK            bool
	// ScaleTo, when set, is a replica count qscale writes itself (0 → 1, → 0).
	ScaleTo *int32
	// Desired is the replica count the policy aims at, for the record.
	Desired int32
}

// Scaler is the policy under test: told of every poll, it answers what qscale serves.
type Scaler interface {
	Poll(o Observation) Served
}

// Config describes one run. Zero values take the defaults stated.
type Config struct {
	Trace Trace
	// PerReplica is the messages per second one ready replica consumes (μ).
	PerReplica float64
	// StartupDelay is how long a new replica takes to become ready; default 30s.
	StartupDelay time.Duration
	// PollInterval is qscale's polling interval; default 10s.
	PollInterval time.Duration
	// SyncPeriod is the HPA controller's; default 15s. SyncOffset delays its first sync, so
	// that polls and syncs are not in step; default 7s.
	SyncPeriod, SyncOffset time.Duration
	// Behavior is the HPA's; nil means DefaultBehavior.
	Behavior *Behavior
	// MinReplicas and MaxReplicas bound the HPA (min-replicas 0 lets qscale scale to 0);
	// defaults 1 and 1,000.
	MinReplicas, MaxReplicas int32
	// Target is the backlog age a run is judged against; default 30s.
	Target time.Duration
	// Progress, when set, is called about every 5 % of a long run with the share done.
	Progress func(done float64)
	// Trajectory, when set, is called every second with the state then.
	Trajectory func(Point)
}

// Point is the state of a run at the end of one second.
type Point struct {
	Time                     time.Duration
	Arrivals                 float64 // this second
	Backlog                  float64
	Age                      time.Duration // of the oldest waiting message
	Replicas, Ready, Desired int32
}

// Result is what a run cost and how long messages waited.
type Result struct {
	Seconds int
	// ReplicaHours counts every replica from its creation, ready or not.
	ReplicaHours float64
	// FluidHours is the lower bound: every message processed the moment it arrives by
	// exactly the capacity it needs (arrivals ÷ per-replica rate).
	FluidHours float64
	// AgeP50, AgeP95, AgeP99 and AgeMax are of the oldest waiting message, sampled every
	// second (0 while nothing waits).
	AgeP50, AgeP95, AgeP99, AgeMax time.Duration
	// OverTarget is the share of seconds in which the oldest message was older than Target.
	OverTarget float64
	// Actions counts the changes of the workload's replicas.
	Actions int
	// Messages is every message that arrived; Left those still waiting at the end.
	Messages, Left float64
}

// Cost is ReplicaHours ÷ FluidHours.
func (r Result) Cost() float64 {
	if r.FluidHours == 0 {
		return math.Inf(1)
	}
	return r.ReplicaHours / r.FluidHours
}

func (c *Config) defaults() error {
	if c.PerReplica <= 0 {
		return errors.New("PerReplica must be above 0")
	}
	if len(c.Trace.Start) < 2 {
		return errors.New("no trace")
	}
	or := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	or(&c.StartupDelay, 30*time.Second)
	or(&c.PollInterval, 10*time.Second)
	or(&c.SyncPeriod, 15*time.Second)
	or(&c.SyncOffset, 7*time.Second)
	or(&c.Target, 30*time.Second)
	if c.Behavior == nil {
		b := DefaultBehavior()
		c.Behavior = &b
	}
	if c.MaxReplicas == 0 {
		c.MaxReplicas = 1000
	}
	return nil
}

// Run replays cfg.Trace through s, second by second, and returns what it cost. The run
// starts with the replicas the first second's arrivals need, all ready.
func Run(cfg Config, s Scaler) (Result, error) {
	if err := cfg.defaults(); err != nil {
		return Result{}, err
	}
	arrivals := cfg.Trace.perSecond()
	w := newWorld(cfg, arrivals)
	var res Result
	ages := newAgeHistogram()
	var served Served
	lastPoll := time.Duration(-1)
	report := max(len(arrivals)/20, 1)
	for sec := range arrivals {
		now := time.Duration(sec) * time.Second
		w.step(sec, now)
		if now%cfg.PollInterval == 0 {
			served = s.Poll(w.observe(now))
			lastPoll = now
			if served.ScaleTo != nil && *served.ScaleTo != w.replicas() {
				w.setReplicas(now, *served.ScaleTo)
			}
		}
		if now >= cfg.SyncOffset && (now-cfg.SyncOffset)%cfg.SyncPeriod == 0 {
			fresh := lastPoll >= 0 && now-lastPoll <= 3*cfg.PollInterval
			n := w.hpa.sync(now, w.replicas(), served.Value, served.Target, served.OK && fresh)
			w.setReplicas(now, n)
			w.hpa.prune(now)
		}
		age := w.age(sec)
		ages.add(age)
		if age > cfg.Target {
			res.OverTarget++
		}
		res.ReplicaHours += float64(w.replicas())
		if cfg.Trajectory != nil {
			cfg.Trajectory(Point{Time: now, Arrivals: float64(w.arrived[sec]), Backlog: w.backlog, Age: age,
				Replicas: w.replicas(), Ready: w.ready(now), Desired: served.Desired})
		}
		if cfg.Progress != nil && sec%report == 0 && sec > 0 {
			cfg.Progress(float64(sec) / float64(len(arrivals)))
		}
	}
	res.Seconds = len(arrivals)
	res.OverTarget /= float64(res.Seconds)
	res.ReplicaHours /= 3600
	res.Messages, res.Left = w.produced, w.backlog
	res.FluidHours = w.produced / cfg.PerReplica / 3600
	res.Actions = w.actions
	res.AgeP50, res.AgeP95, res.AgeP99, res.AgeMax = ages.quantile(0.5), ages.quantile(0.95), ages.quantile(0.99), ages.max
	return res, nil
}

// world is the queue and the pods that drain it.
type world struct {
	cfg      Config
	hpa      hpa
	arrived  []int64   // messages arriving in each second
	readyAt  []float64 // of each pod, in seconds; newest last
	queue    []chunk   // FIFO
	backlog  float64
	produced float64
	consumed float64
	carry    float64 // consumption capacity left from fractions of messages
	actions  int
}

type chunk struct {
	sec int
	n   int64
}

func newWorld(cfg Config, rates []float64) *world {
	w := &world{cfg: cfg, hpa: hpa{behavior: *cfg.Behavior, min: max(1, cfg.MinReplicas), max: cfg.MaxReplicas}}
	// Arrivals as whole messages, the fractions carried over.
	w.arrived = make([]int64, len(rates))
	carry := 0.0
	for i, r := range rates {
		carry += r
		n := math.Floor(carry)
		w.arrived[i], carry = int64(n), carry-n
	}
	first := int32(math.Ceil(rates[0] / cfg.PerReplica))
	first = min(max(first, max(1, cfg.MinReplicas)), cfg.MaxReplicas)
	for range first {
		w.readyAt = append(w.readyAt, -1)
	}
	return w
}

func (w *world) replicas() int32 { return int32(len(w.readyAt)) } //nolint:gosec // at most MaxReplicas pods

func (w *world) ready(now time.Duration) int32 {
	n := int32(0)
	for _, at := range w.readyAt {
		if at <= now.Seconds() {
			n++
		}
	}
	return n
}

// setReplicas creates or removes pods: new ones are ready after the start-up delay; the
// newest go first, not-ready ones before ready ones.
func (w *world) setReplicas(now time.Duration, n int32) {
	have := w.replicas()
	if n == have {
		return
	}
	w.actions++
	if n > have {
		for range n - have {
			w.readyAt = append(w.readyAt, (now + w.cfg.StartupDelay).Seconds())
		}
		return
	}
	sort.Float64s(w.readyAt) // the last are the latest to be ready
	w.readyAt = w.readyAt[:n]
}

// step adds the arrivals of second sec and consumes what the ready pods can.
func (w *world) step(sec int, now time.Duration) {
	if n := w.arrived[sec]; n > 0 {
		w.queue = append(w.queue, chunk{sec: sec, n: n})
		w.backlog += float64(n)
		w.produced += float64(n)
	}
	w.carry += float64(w.ready(now)) * w.cfg.PerReplica
	can := int64(math.Floor(w.carry))
	w.carry -= float64(can)
	for can > 0 && len(w.queue) > 0 {
		c := &w.queue[0]
		take := min(can, c.n)
		c.n -= take
		can -= take
		w.backlog -= float64(take)
		w.consumed += float64(take)
		if c.n == 0 {
			w.queue = w.queue[1:]
		}
	}
	if len(w.queue) == 0 {
		w.carry = 0 // capacity is not banked while idle
	}
}

// age is the age of the oldest waiting message at the end of second sec: a message that
// arrived in second k has waited up to sec − k + 1 seconds.
func (w *world) age(sec int) time.Duration {
	if len(w.queue) == 0 {
		return 0
	}
	return time.Duration(sec-w.queue[0].sec+1) * time.Second
}

func (w *world) observe(now time.Duration) Observation {
	return Observation{Time: now, Backlog: w.backlog, Produced: w.produced, Consumed: w.consumed,
		Ready: w.ready(now), Replicas: w.replicas()}
}

// ageHistogram counts ages by whole seconds.
type ageHistogram struct {
	counts []int64
	total  int64
	max    time.Duration
}

func newAgeHistogram() *ageHistogram { return &ageHistogram{counts: make([]int64, 3601)} }

func (h *ageHistogram) add(age time.Duration) {
	s := min(int(age/time.Second), len(h.counts)-1)
	h.counts[s]++
	h.total++
	h.max = max(h.max, age)
}

func (h *ageHistogram) quantile(q float64) time.Duration {
	want := int64(math.Ceil(q * float64(h.total)))
	var seen int64
	for s, n := range h.counts {
		seen += n
		if seen >= want && n > 0 {
			return time.Duration(s) * time.Second
		}
	}
	return h.max
}
