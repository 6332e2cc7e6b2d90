package policy

import (
	"errors"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// spec is the Spec of the default annotations, changed by mod.
func spec(mod func(*Spec)) Spec {
	s := Spec{MinReplicas: 1, MaxReplicas: 100, PollingInterval: 10 * time.Second, CooldownPeriod: 5 * time.Minute, FallbackFailures: 3,
		ScaleUpTolerance: DefaultTolerance, ScaleDownTolerance: DefaultTolerance}
	if mod != nil {
		mod(&s)
	}
	return s
}

func value(v, target float64) TriggerState {
	return TriggerState{Target: target, Value: v, Active: v > 0, Polled: true}
}

func aged(s TriggerState, age time.Duration) TriggerState {
	s.Age = age
	return s
}

func failing(n int32) TriggerState {
	return TriggerState{Target: 10, Err: errors.New("down"), Failures: n, Polled: true}
}

func TestDecide(t *testing.T) {
	errPoll := failing(1)
	tests := []struct {
		name         string
		in           Input
		wantDesired  int32
		wantScaleTo  *int32
		wantActive   bool
		wantFallback bool
		wantPaused   bool
		wantServed   []bool    // per trigger: a value is served
		wantRaw      []float64 // per trigger: the raw value served, when given
	}{
		{name: "ceil of value over target", in: Input{Spec: spec(nil), Triggers: []TriggerState{value(95, 10)}, Replicas: 10, Observed: 10},
			wantDesired: 10, wantActive: true, wantServed: []bool{true}},
		{name: "largest trigger wins", in: Input{Spec: spec(nil), Triggers: []TriggerState{value(95, 10), value(30, 2)}, Replicas: 10, Observed: 10},
			wantDesired: 15, wantActive: true, wantServed: []bool{true, true}},
		{name: "clamped to max", in: Input{Spec: spec(func(s *Spec) { s.MaxReplicas = 8 }), Triggers: []TriggerState{value(950, 10)}, Replicas: 5, Observed: 5},
			wantDesired: 8, wantActive: true, wantServed: []bool{true}},
		{name: "clamped to min", in: Input{Spec: spec(func(s *Spec) { s.MinReplicas = 3 }), Triggers: []TriggerState{value(0, 10)}, Replicas: 3, Observed: 3},
			wantDesired: 3, wantServed: []bool{true}},
		{name: "activation from zero", in: Input{Spec: spec(func(s *Spec) { s.MinReplicas = 0 }), Triggers: []TriggerState{value(35, 10)}, Replicas: 0, Now: t0},
			wantDesired: 4, wantScaleTo: ptr[int32](1), wantActive: true, wantServed: []bool{true}},
		{name: "a backlog-age trigger that knows no per-replica rate yet wakes a workload at zero when active",
			in:          Input{Spec: spec(func(s *Spec) { s.MinReplicas = 0 }), Triggers: []TriggerState{{Target: AgeTarget, Active: true, Polled: true, Pending: true, Replicas: true}}, Replicas: 0, Now: t0},
			wantDesired: 1, wantScaleTo: ptr[int32](1), wantActive: true, wantServed: []bool{false}},
		{name: "a backlog-age trigger that knows no per-replica rate yet holds the size",
			in:          Input{Spec: spec(nil), Triggers: []TriggerState{{Target: AgeTarget, Active: true, Polled: true, Pending: true, Replicas: true}}, Replicas: 6, Observed: 6, Now: t0},
			wantDesired: 6, wantActive: true, wantServed: []bool{false}},
		{name: "inactive at zero stays at zero", in: Input{Spec: spec(func(s *Spec) { s.MinReplicas = 0 }), Triggers: []TriggerState{value(0, 10)}, Replicas: 0, Now: t0},
			wantDesired: 0, wantServed: []bool{true}},
		{name: "below the activation threshold stays at zero", in: Input{Spec: spec(func(s *Spec) { s.MinReplicas = 0 }),
			Triggers: []TriggerState{{Target: 10, Value: 3, Active: false, Polled: true}}, Replicas: 0, Now: t0},
			wantDesired: 0, wantServed: []bool{true}},
		{name: "cooldown not over", in: Input{Spec: spec(func(s *Spec) { s.MinReplicas = 0 }), Triggers: []TriggerState{value(0, 10)},
			Replicas: 1, Observed: 1, LastActive: t0.Add(-4 * time.Minute), Now: t0},
			wantDesired: 1, wantServed: []bool{true}},
		{name: "cooldown over: to zero", in: Input{Spec: spec(func(s *Spec) { s.MinReplicas = 0 }), Triggers: []TriggerState{value(0, 10)},
			Replicas: 1, Observed: 1, LastActive: t0.Add(-5 * time.Minute), Now: t0},
			wantDesired: 0, wantScaleTo: ptr[int32](0), wantServed: []bool{true}},
		{name: "cooldown over but the HPA has not scaled down yet", in: Input{Spec: spec(func(s *Spec) { s.MinReplicas = 0 }), Triggers: []TriggerState{value(0, 10)},
			Replicas: 4, Observed: 4, LastActive: t0.Add(-time.Hour), Now: t0},
			wantDesired: 0, wantServed: []bool{true}},
		{name: "a failing trigger never lets the workload go to zero", in: Input{Spec: spec(func(s *Spec) { s.MinReplicas = 0 }), Triggers: []TriggerState{value(0, 10), errPoll},
			Replicas: 1, Observed: 1, LastActive: t0.Add(-time.Hour), Now: t0},
			wantDesired: 1, wantServed: []bool{true, false}},
		{name: "an unread trigger never lets the workload go to zero", in: Input{Spec: spec(func(s *Spec) { s.MinReplicas = 0 }), Triggers: []TriggerState{{Target: 10}},
			Replicas: 1, Observed: 1, LastActive: t0.Add(-time.Hour), Now: t0},
			wantDesired: 1, wantServed: []bool{false}},
		{name: "failing below the fallback threshold serves nothing and holds", in: Input{Spec: spec(func(s *Spec) { s.FallbackReplicas = 6 }), Triggers: []TriggerState{failing(2)}, Replicas: 3, Observed: 3},
			wantDesired: 3, wantServed: []bool{false}},
		{name: "fallback never serves fewer replicas than the workload has", in: Input{Spec: spec(func(s *Spec) { s.FallbackReplicas = 2 }), Triggers: []TriggerState{failing(3)}, Replicas: 20, Observed: 20},
			wantDesired: 20, wantFallback: true, wantServed: []bool{true}, wantRaw: []float64{200}},
		{name: "fallback above max-replicas serves max", in: Input{Spec: spec(func(s *Spec) { s.FallbackReplicas = 2; s.MaxReplicas = 8 }), Triggers: []TriggerState{failing(3)}, Replicas: 20, Observed: 20},
			wantDesired: 8, wantFallback: true, wantServed: []bool{true}, wantRaw: []float64{80}},
		{name: "a failing trigger holds the workload while another asks for less", in: Input{Spec: spec(nil), Triggers: []TriggerState{value(10, 10), failing(1)}, Replicas: 8, Observed: 8},
			wantDesired: 8, wantActive: true, wantServed: []bool{true, false}},
		{name: "a fresh value scales down", in: Input{Spec: spec(nil), Triggers: []TriggerState{value(10, 10)}, Replicas: 8, Observed: 8},
			wantDesired: 1, wantActive: true, wantServed: []bool{true}},
		{name: "a stale value does not scale down", in: Input{Spec: spec(nil), Triggers: []TriggerState{aged(value(10, 10), 31*time.Second)}, Replicas: 8, Observed: 8},
			wantDesired: 8, wantServed: []bool{false}},
		{name: "a value three intervals old is still fresh", in: Input{Spec: spec(nil), Triggers: []TriggerState{aged(value(10, 10), 30*time.Second)}, Replicas: 8, Observed: 8},
			wantDesired: 1, wantActive: true, wantServed: []bool{true}},
		{name: "an hour-old sample never takes a workload from 1 to 0", in: Input{Spec: spec(func(s *Spec) { s.MinReplicas = 0 }), Triggers: []TriggerState{aged(value(0, 10), time.Hour)},
			Replicas: 1, Observed: 1, LastActive: t0.Add(-time.Hour), Now: t0},
			wantDesired: 1, wantServed: []bool{false}},
		{name: "fallback after enough failures", in: Input{Spec: spec(func(s *Spec) { s.FallbackReplicas = 6 }), Triggers: []TriggerState{failing(3)}, Replicas: 3, Observed: 3},
			wantDesired: 6, wantFallback: true, wantServed: []bool{true}},
		{name: "fallback wakes a workload at zero", in: Input{Spec: spec(func(s *Spec) { s.MinReplicas = 0; s.FallbackReplicas = 2 }), Triggers: []TriggerState{failing(5)}, Replicas: 0},
			wantDesired: 2, wantScaleTo: ptr[int32](1), wantFallback: true, wantServed: []bool{true}},
		{name: "without fallback a failing source leaves a workload at zero", in: Input{Spec: spec(func(s *Spec) { s.MinReplicas = 0 }), Triggers: []TriggerState{failing(5)}, Replicas: 0},
			wantDesired: 0, wantServed: []bool{false}},
		{name: "paused changes nothing", in: Input{Spec: spec(func(s *Spec) { s.Paused = true }), Triggers: []TriggerState{value(500, 10)}, Replicas: 7},
			wantDesired: 7, wantPaused: true},
		{name: "paused replicas", in: Input{Spec: spec(func(s *Spec) { s.PausedReplicas = ptr[int32](2) }), Triggers: []TriggerState{value(500, 10)}, Replicas: 7},
			wantDesired: 2, wantScaleTo: ptr[int32](2), wantPaused: true},
		{name: "paused replicas already applied", in: Input{Spec: spec(func(s *Spec) { s.PausedReplicas = ptr[int32](2) }), Replicas: 2},
			wantDesired: 2, wantPaused: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.in)
			if d.Desired != tt.wantDesired || d.Active != tt.wantActive || d.Fallback != tt.wantFallback || d.Paused != tt.wantPaused {
				t.Errorf("desired %d active %v fallback %v paused %v; want %d %v %v %v",
					d.Desired, d.Active, d.Fallback, d.Paused, tt.wantDesired, tt.wantActive, tt.wantFallback, tt.wantPaused)
			}
			if (d.ScaleTo == nil) != (tt.wantScaleTo == nil) || (d.ScaleTo != nil && *d.ScaleTo != *tt.wantScaleTo) {
				t.Errorf("ScaleTo = %v, want %v", deref(d.ScaleTo), deref(tt.wantScaleTo))
			}
			for i, want := range tt.wantServed {
				if d.Metrics[i].OK != want {
					t.Errorf("metric %d served = %v, want %v", i, d.Metrics[i].OK, want)
				}
			}
			for i, want := range tt.wantRaw {
				if d.Metrics[i].Raw != want {
					t.Errorf("metric %d raw = %v, want %v", i, d.Metrics[i].Raw, want)
				}
			}
		})
	}
}

func TestDecideLastActive(t *testing.T) {
	s := spec(func(s *Spec) { s.MinReplicas = 0 })
	old := t0.Add(-time.Hour)
	if d := Decide(Input{Spec: s, Triggers: []TriggerState{value(5, 10)}, Replicas: 1, Observed: 1, LastActive: old, Now: t0}); !d.LastActive.Equal(t0) {
		t.Errorf("an active trigger should move LastActive to now, got %v", d.LastActive)
	}
	if d := Decide(Input{Spec: s, Triggers: []TriggerState{value(0, 10)}, Replicas: 1, Observed: 1, LastActive: old, Now: t0}); !d.LastActive.Equal(old) {
		t.Errorf("an inactive trigger should keep LastActive, got %v", d.LastActive)
	}
}

func deref(p *int32) any {
	if p == nil {
		return nil
	}
	return *p
}
