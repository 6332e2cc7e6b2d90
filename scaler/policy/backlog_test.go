package policy

import (
	"math"
	"testing"
	"time"
)

// feed observes polls every 10 s from the given steady rates: arrivals per second, the
// consumption of each ready replica, ready replicas and replicas, a backlog.
type steady struct {
	arrival, perReplica float64
	ready, replicas     int32
	backlog             float64
}

func feed(r *Rates, from time.Time, polls int, s steady, produced, consumed *float64) time.Time {
	at := from
	for range polls {
		r.Observe(Poll{Time: at, Backlog: s.backlog, Produced: *produced, Consumed: *consumed, Ready: s.ready, Replicas: s.replicas})
		at = at.Add(10 * time.Second)
		*produced += s.arrival * 10
		*consumed += s.perReplica * float64(s.ready) * 10
	}
	return at
}

func TestRatesLearnsOnlyFromSaturatedConsumers(t *testing.T) {
	tests := []struct {
		name    string
		seed    float64
		phase   steady
		want    float64 // the per-replica rate learned
		wantAny bool    // only that some rate is known
	}{
		{name: "saturated: learned", seed: 40, phase: steady{arrival: 500, perReplica: 50, ready: 8, replicas: 8, backlog: 4000}, want: 50},
		{name: "idle consumers teach nothing", seed: 40, phase: steady{arrival: 80, perReplica: 10, ready: 8, replicas: 8, backlog: 0}, want: 40},
		{name: "no seed: unsaturated consumption is a floor", phase: steady{arrival: 80, perReplica: 10, ready: 8, replicas: 8}, want: 10},
		{name: "the seed bounds what is learned", seed: 40, phase: steady{arrival: 5000, perReplica: 1000, ready: 4, replicas: 4, backlog: 1e6}, want: 160},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRates(BacklogAge{Target: 30 * time.Second, ReplicaThroughput: tt.seed, PollingInterval: 10 * time.Second})
			var produced, consumed float64
			feed(r, t0, 30, tt.phase, &produced, &consumed)
			got, _ := r.Throughput()
			if math.Abs(got-tt.want) > 0.5 {
				t.Errorf("per-replica rate %.1f, want %.1f", got, tt.want)
			}
		})
	}
}

// An interval in which a replica became ready says nothing of what one replica does: the new
// one consumed for part of it only.
func TestRatesIgnoresIntervalsWithReplicasStarting(t *testing.T) {
	r := NewRates(BacklogAge{Target: 30 * time.Second, ReplicaThroughput: 40, PollingInterval: 10 * time.Second})
	var produced, consumed float64
	for i := range int32(20) {
		r.Observe(Poll{Time: t0.Add(time.Duration(i) * 10 * time.Second), Backlog: 5000, Produced: produced, Consumed: consumed, Ready: 2 + i, Replicas: 30})
		produced += 5000
		consumed += 5 * float64(2+i) * 10
	}
	if got, _ := r.Throughput(); got != 40 {
		t.Errorf("per-replica rate %.1f, want the seed 40", got)
	}
}

func TestRatesSizing(t *testing.T) {
	cfg := BacklogAge{Target: 30 * time.Second, ReplicaThroughput: 40, PollingInterval: 10 * time.Second}
	tests := []struct {
		name     string
		phases   []steady
		min, max float64
	}{
		{name: "the arrival rate alone, when nothing waits", phases: []steady{{arrival: 400, perReplica: 40, ready: 10, replicas: 10}},
			min: 10, max: 11},
		{name: "a backlog asks for more, to drain it within the target",
			phases: []steady{{arrival: 400, perReplica: 40, ready: 10, replicas: 10, backlog: 12000}},
			min:    20, max: 21.1},
		{name: "a queue that drained asks for what the arrivals need, not for one replica",
			phases: []steady{{arrival: 400, perReplica: 40, ready: 20, replicas: 20, backlog: 12000}, {arrival: 400, perReplica: 20, ready: 20, replicas: 20}},
			min:    10, max: 11},
		{name: "after a burst, warm capacity stays for the next",
			phases: []steady{{arrival: 1000, perReplica: 40, ready: 25, replicas: 25}, {arrival: 0, perReplica: 0, ready: 25, replicas: 25}},
			min:    5, max: 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRates(cfg)
			var produced, consumed float64
			at := t0
			for _, ph := range tt.phases {
				at = feed(r, at, 12, ph, &produced, &consumed)
			}
			got, ok := r.Replicas()
			if !ok || got < tt.min || got > tt.max {
				t.Errorf("Replicas() = %.2f, %v; want between %v and %v", got, ok, tt.min, tt.max)
			}
		})
	}
}

// A burst's warm floor lasts burstMemory, then goes.
func TestRatesForgetsABurst(t *testing.T) {
	r := NewRates(BacklogAge{Target: 30 * time.Second, ReplicaThroughput: 40, PollingInterval: 10 * time.Second})
	var produced, consumed float64
	at := feed(r, t0, 3, steady{arrival: 1000, perReplica: 40, ready: 25, replicas: 25}, &produced, &consumed)
	feed(r, at, int(burstMemory/(10*time.Second))+12, steady{ready: 1, replicas: 1}, &produced, &consumed)
	if got, _ := r.Replicas(); got > 0.01 {
		t.Errorf("Replicas() = %.2f long after the burst, want 0", got)
	}
}

// A counter that went down (a topic recreated, a queue deleted) starts afresh: no negative
// rate, no spike.
func TestRatesCounterReset(t *testing.T) {
	r := NewRates(BacklogAge{Target: 30 * time.Second, ReplicaThroughput: 40, PollingInterval: 10 * time.Second})
	var produced, consumed float64
	at := feed(r, t0, 6, steady{arrival: 400, perReplica: 40, ready: 10, replicas: 10}, &produced, &consumed)
	before, _ := r.Replicas()
	r.Observe(Poll{Time: at, Produced: 3, Consumed: 1, Ready: 10, Replicas: 10})
	r.Observe(Poll{Time: at.Add(10 * time.Second), Produced: 4003, Consumed: 4001, Ready: 10, Replicas: 10})
	after, _ := r.Replicas()
	if _, arrival := r.Throughput(); arrival < 0 || after > before*1.2 {
		t.Errorf("after a reset: arrival %.1f, replicas %.2f (before %.2f)", arrival, after, before)
	}
}

// Without a seed, a replica that became ready within an interval consumed for part of it
// only: the interval teaches no per-replica rate, not even a lower bound.
func TestRatesIgnoresReadyChangesWithoutSeed(t *testing.T) {
	r := NewRates(BacklogAge{Target: 30 * time.Second, PollingInterval: time.Second})
	r.Observe(Poll{Time: t0, Backlog: 100, Produced: 100, Ready: 0, Replicas: 1})
	r.Observe(Poll{Time: t0.Add(time.Second), Backlog: 150, Produced: 160, Consumed: 10, Ready: 1, Replicas: 1})
	if got, ok := r.Replicas(); ok {
		t.Errorf("Replicas() = %.1f from an interval in which the only replica became ready; want unknown", got)
	}
	r.Observe(Poll{Time: t0.Add(2 * time.Second), Backlog: 170, Produced: 220, Consumed: 50, Ready: 1, Replicas: 1})
	if got, _ := r.Throughput(); got != 40 {
		t.Errorf("per-replica rate %.1f after a saturated second, want 40", got)
	}
}

// With no per-replica rate known, a trigger on which nothing arrives, nothing waits and no
// burst was seen needs no replica: that is known without the rate. Anything else is not.
func TestRatesIdleWithoutRate(t *testing.T) {
	tests := []struct {
		name     string
		polls    []Poll
		wantOK   bool
		wantNeed float64
	}{
		{name: "one poll: the arrival rate is not known yet", polls: []Poll{{Time: t0, Ready: 1, Replicas: 1}}},
		{name: "nothing produced, nothing waiting: no replica needed", wantOK: true,
			polls: []Poll{{Time: t0, Produced: 7, Consumed: 7, Ready: 1, Replicas: 1}, {Time: t0.Add(time.Second), Produced: 7, Consumed: 7, Ready: 1, Replicas: 1}}},
		{name: "messages waiting: unknown",
			polls: []Poll{{Time: t0, Backlog: 3, Produced: 10, Consumed: 7}, {Time: t0.Add(time.Second), Backlog: 3, Produced: 10, Consumed: 7}}},
		{name: "messages arriving: unknown",
			polls: []Poll{{Time: t0, Produced: 10, Consumed: 10}, {Time: t0.Add(time.Second), Produced: 12, Consumed: 12}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRates(BacklogAge{Target: 30 * time.Second, PollingInterval: time.Second})
			for _, p := range tt.polls {
				r.Observe(p)
			}
			if got, ok := r.Replicas(); ok != tt.wantOK || got != tt.wantNeed {
				t.Errorf("Replicas() = %.2f, %v; want %.2f, %v", got, ok, tt.wantNeed, tt.wantOK)
			}
		})
	}
}

// Replicas beyond what can consume at once (a topic's partitions) are idle: the per-replica
// rate is learned from those that consume, and the ask stops at them.
func TestRatesConsumersLimit(t *testing.T) {
	r := NewRates(BacklogAge{Target: 30 * time.Second, PollingInterval: 10 * time.Second})
	var produced, consumed float64
	at := t0
	for range 12 {
		// 12 ready replicas on 8 partitions: 8 consume 40/s each, with a backlog waiting.
		r.Observe(Poll{Time: at, Backlog: 50000, Produced: produced, Consumed: consumed, Consumers: 8, Ready: 12, Replicas: 12})
		at = at.Add(10 * time.Second)
		produced += 1000 * 10
		consumed += 8 * 40 * 10
	}
	perReplica, _ := r.Throughput()
	got, ok := r.Replicas()
	if perReplica != 40 || !ok || got != 8 {
		t.Errorf("per-replica rate %.1f, Replicas() = %.2f, %v; want 40 and the 8 partitions", perReplica, got, ok)
	}
}

func TestRatesWithoutAnyRate(t *testing.T) {
	r := NewRates(BacklogAge{Target: 30 * time.Second, PollingInterval: 10 * time.Second})
	if _, ok := r.Replicas(); ok {
		t.Error("Replicas() is known before any poll")
	}
	r.Observe(Poll{Time: t0, Backlog: 100, Produced: 100, Ready: 0, Replicas: 0})
	if _, ok := r.Replicas(); ok {
		t.Error("Replicas() is known with no seed and no consumption seen")
	}
}

// The warm floor is the capacity that keeps the target through a past burst, were it to come
// again: a share of the burst's rate that grows with its length, up to what holds the target
// until the loop has reacted; none when the loop reacts within the target.
func TestRatesWarmFloor(t *testing.T) {
	// With a 10 s polling interval and the default start-up, the reaction is 5 + 7.5 + 30 s.
	const react = 42.5
	tests := []struct {
		name    string
		target  time.Duration
		poll    time.Duration
		burst   time.Duration // at 400 messages/s, after a minute of nothing, then idle for a minute
		want    float64       // messages per second kept warm
		epsilon float64
	}{
		{name: "a 10 s burst: drained within the target by a quarter of its rate", target: 30 * time.Second, poll: 10 * time.Second,
			burst: 10 * time.Second, want: 400 * 10.0 / 40, epsilon: 0.5},
		{name: "a burst longer than the reaction: the rate less what ages the oldest message by the target", target: 30 * time.Second,
			poll: 10 * time.Second, burst: 2 * time.Minute, want: 400 * (1 - 30/react), epsilon: 0.5},
		{name: "a loop that reacts within the target keeps nothing warm", target: 45 * time.Second, poll: 10 * time.Second,
			burst: 2 * time.Minute, want: 0},
		// The history keeps a count every reaction/8 (4.75 s): the 800 messages of the burst
		// may look spread over a few seconds more, which calls for a little less.
		{name: "1 s polls: a 2 s burst calls for little", target: 30 * time.Second, poll: time.Second,
			burst: 2 * time.Second, want: 800.0 / (2 + 30), epsilon: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRates(BacklogAge{Target: tt.target, ReplicaThroughput: 40, PollingInterval: tt.poll})
			produced, at := 0.0, t0
			for end := t0.Add(2*time.Minute + tt.burst); at.Before(end.Add(time.Minute)); at = at.Add(tt.poll) {
				r.Observe(Poll{Time: at, Produced: produced, Ready: 1, Replicas: 1})
				if !at.Before(t0.Add(time.Minute)) && at.Before(t0.Add(time.Minute+tt.burst)) {
					produced += 400 * tt.poll.Seconds()
				}
			}
			if math.Abs(r.floor-tt.want) > tt.epsilon {
				t.Errorf("warm floor %.1f messages/s, want %.1f", r.floor, tt.want)
			}
			if n, most := len(r.history), int((burstMemory+time.Duration(react*float64(time.Second)))/r.historySpacing())+3; n > most {
				t.Errorf("the history holds %d counts, want at most %d", n, most)
			}
		})
	}
}
