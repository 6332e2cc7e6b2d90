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
