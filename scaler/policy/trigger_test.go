package policy

import (
	"errors"
	"testing"
	"time"
)

func TestAgeTriggerThroughDecide(t *testing.T) {
	spec := Spec{MinReplicas: 1, MaxReplicas: 100, PollingInterval: 10 * time.Second, CooldownPeriod: 5 * time.Minute,
		FallbackFailures: 3, ScaleUpTolerance: DefaultTolerance, ScaleDownTolerance: DefaultTolerance}
	t.Run("without a known per-replica rate the size holds", func(t *testing.T) {
		tr := NewAgeTrigger(BacklogAge{Target: 30 * time.Second, PollingInterval: 10 * time.Second})
		w := NewWorkload(spec, t0, tr)
		tr.Observe(Observation{Poll: Poll{Time: t0, Backlog: 500, Produced: 500, Ready: 4, Replicas: 4}})
		d := w.Decide(t0, 4, 4)
		if d.Desired != 4 || d.Metrics[0].OK || !tr.State(t0).Pending {
			t.Errorf("desired %d, served %v, pending %v; want 4, nothing served, pending", d.Desired, d.Metrics[0].OK, tr.State(t0).Pending)
		}
	})
	t.Run("its value counts replicas, with a target of 1", func(t *testing.T) {
		tr := NewAgeTrigger(BacklogAge{Target: 30 * time.Second, ReplicaThroughput: 40, PollingInterval: 10 * time.Second})
		w := NewWorkload(spec, t0, tr)
		var produced, consumed float64
		var d Decision
		for i := range 6 { // 400 msg/s, consumed as they come by 10 replicas
			at := t0.Add(time.Duration(i) * 10 * time.Second)
			tr.Observe(Observation{Poll: Poll{Time: at, Produced: produced, Consumed: consumed, Ready: 10, Replicas: 10}})
			d = w.Decide(at, 10, 10)
			produced, consumed = produced+4000, consumed+4000
		}
		if st := tr.State(t0); st.Target != AgeTarget || !st.Replicas {
			t.Errorf("state %+v", st)
		}
		if d.Desired != 11 || !d.Metrics[0].OK { // 400/40 with 5 % headroom
			t.Errorf("desired %d (served %v), want 11", d.Desired, d.Metrics[0].OK)
		}
	})
	t.Run("a failing source counts towards fallback and holds", func(t *testing.T) {
		tr := NewAgeTrigger(BacklogAge{Target: 30 * time.Second, ReplicaThroughput: 40, PollingInterval: 10 * time.Second})
		w := NewWorkload(spec, t0, tr)
		tr.Observe(Observation{Poll: Poll{Time: t0}, Err: errors.New("down")})
		tr.Observe(Observation{Poll: Poll{Time: t0.Add(10 * time.Second)}, Err: errors.New("down")})
		if d := w.Decide(t0.Add(10*time.Second), 7, 7); d.Desired != 7 || tr.State(t0).Failures != 2 {
			t.Errorf("desired %d, failures %d; want 7 held and 2 failures", d.Desired, tr.State(t0).Failures)
		}
	})
}

// On the way up, a value that counts replicas is served past the HPA's tolerance band even
// when the HPA then lands a little above the target: one replica short at 20 would be 5 %
// of the capacity missing, where a threshold trigger's value is served as it is.
func TestReplicaValuesOvershootRatherThanStay(t *testing.T) {
	spec := Spec{MinReplicas: 1, MaxReplicas: 100, PollingInterval: 10 * time.Second, ScaleUpTolerance: DefaultTolerance, ScaleDownTolerance: DefaultTolerance}
	tests := []struct {
		name     string
		state    TriggerState
		wantHPA  int32
		wantSame bool // the value is served as it is
	}{
		{name: "replicas 21 at 20", state: TriggerState{Target: AgeTarget, Value: 21, Polled: true, Replicas: true}, wantHPA: 23},
		{name: "a threshold value worth 21 at 20", state: TriggerState{Target: 10, Value: 210, Polled: true}, wantHPA: 20, wantSame: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(Input{Spec: spec, Triggers: []TriggerState{tt.state}, Replicas: 20, Observed: 20, Now: t0})
			h := hpa{current: 20, lo: 1, hi: 100, up: DefaultTolerance, down: DefaultTolerance}
			if got := h.outcome(d.Metrics, targetsMilli([]TriggerState{tt.state})); got != tt.wantHPA {
				t.Errorf("the HPA lands on %d, want %d (served %d milli)", got, tt.wantHPA, d.Metrics[0].Milli)
			}
			if tt.wantSame != (d.Metrics[0].Milli == Milli(tt.state.Value)) {
				t.Errorf("served %d milli for a value of %v", d.Metrics[0].Milli, tt.state.Value)
			}
		})
	}
}
