package policy

import "testing"

// The HPA keeps its size while value/(target × replicas) is within 10 % of 1; the value
// served must make it land exactly on the loop's target where any value can.
func TestServedValuesLandTheHPAOnTheTarget(t *testing.T) {
	tests := []struct {
		name      string
		spec      Spec
		triggers  []TriggerState
		observed  int32
		wantHPA   int32 // where the modelled HPA lands with the served values
		wantMilli []int64
	}{
		{name: "63 to 64 at the maximum: raised just above the band", spec: spec(func(s *Spec) { s.MaxReplicas = 64 }),
			triggers: []TriggerState{value(640, 10)}, observed: 63, wantHPA: 64, wantMilli: []int64{693001}},
		{name: "9 to 10 needs no steering", spec: spec(nil), triggers: []TriggerState{value(100, 10)}, observed: 9, wantHPA: 10, wantMilli: []int64{100000}},
		{name: "10 to 9: lowered just below the band", spec: spec(nil), triggers: []TriggerState{value(90, 10)}, observed: 10, wantHPA: 9, wantMilli: []int64{89999}},
		{name: "20 to the minimum of 19 needs no steering", spec: spec(func(s *Spec) { s.MinReplicas = 19 }), triggers: []TriggerState{value(50, 10)}, observed: 20, wantHPA: 19, wantMilli: []int64{50000}},
		{name: "20 to 19 at the minimum: lowered below the band", spec: spec(func(s *Spec) { s.MinReplicas = 19 }), triggers: []TriggerState{value(190, 10)}, observed: 20, wantHPA: 19, wantMilli: []int64{179999}},
		{name: "a second trigger inside the band is lowered too", spec: spec(nil), triggers: []TriggerState{value(90, 10), value(18, 2)}, observed: 10,
			wantHPA: 9, wantMilli: []int64{89999, 17999}},
		{name: "63 to 64 below the maximum with tolerance 0 set in hpa-behavior", spec: spec(func(s *Spec) { s.ScaleUpTolerance = 0 }),
			triggers: []TriggerState{value(640, 10)}, observed: 63, wantHPA: 64, wantMilli: []int64{640000}},
		{name: "63 to 64 below the maximum cannot be reached by a value: served as is", spec: spec(nil),
			triggers: []TriggerState{value(640, 10)}, observed: 63, wantHPA: 63, wantMilli: []int64{640000}},
		{name: "no steering while a metric is unread and the target is lower", spec: spec(nil), triggers: []TriggerState{value(50, 10), {Target: 10}}, observed: 10,
			wantHPA: 10, wantMilli: []int64{50000, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(Input{Spec: tt.spec, Triggers: tt.triggers, Replicas: tt.observed, Observed: tt.observed, Now: t0})
			for i, want := range tt.wantMilli {
				if d.Metrics[i].Milli != want {
					t.Errorf("metric %d served %d milli, want %d (raw %v)", i, d.Metrics[i].Milli, want, d.Metrics[i].Raw)
				}
			}
			h := hpa{current: tt.observed, lo: max(1, tt.spec.MinReplicas), hi: tt.spec.MaxReplicas, up: tt.spec.ScaleUpTolerance, down: tt.spec.ScaleDownTolerance}
			if got := h.outcome(d.Metrics, targetsMilli(tt.triggers)); got != tt.wantHPA {
				t.Errorf("the HPA lands on %d, want %d (loop target %d)", got, tt.wantHPA, d.Desired)
			}
		})
	}
}
