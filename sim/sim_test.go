package sim

import (
	"strings"
	"testing"
	"time"
)

func TestReadTrace(t *testing.T) {
	tests := []struct {
		name, csv string
		wantErr   string
		wantPeak  float64
	}{
		{name: "the shipped format", csv: "t_seconds,arrivals_per_second\n0,1.5\n10,0\n20,3\n", wantPeak: 3},
		{name: "a wrong header", csv: "t,rate\n0,1\n10,2\n", wantErr: "header"},
		{name: "a negative rate", csv: "t_seconds,arrivals_per_second\n0,1\n10,-2\n", wantErr: "line 3"},
		{name: "time going back", csv: "t_seconds,arrivals_per_second\n0,1\n10,2\n5,2\n", wantErr: "does not increase"},
		{name: "not a number", csv: "t_seconds,arrivals_per_second\n0,1\n10,x\n", wantErr: "two numbers"},
		{name: "one row", csv: "t_seconds,arrivals_per_second\n0,1\n", wantErr: "two rows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := ReadTrace(strings.NewReader(tt.csv))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || tr.Peak() != tt.wantPeak || tr.Duration() != 30 {
				t.Fatalf("trace %+v, err %v", tr, err)
			}
		})
	}
}

func TestHPAModel(t *testing.T) {
	def := DefaultBehavior()
	fast := Behavior{Up: Rules{SelectPolicy: "Max", Tolerance: 0.1, Policies: []ScalingPolicy{{Type: Percent, Value: 1000, Period: 15 * time.Second}}},
		Down: Rules{SelectPolicy: "Max", Tolerance: 0.1, Policies: []ScalingPolicy{{Type: Percent, Value: 100, Period: 15 * time.Second}}}}
	tests := []struct {
		name     string
		behavior Behavior
		syncs    []float64 // the metric's value at each sync, 15 s apart; target 10
		start    int32
		want     []int32 // replicas after each sync
	}{
		{name: "within the 10 % band nothing moves", behavior: def, start: 20, syncs: []float64{215, 185}, want: []int32{20, 20}},
		{name: "up by at most 4 pods or 100 % per 15 s", behavior: def, start: 2, syncs: []float64{500, 500, 500}, want: []int32{6, 12, 24}},
		{name: "down only after the 300 s window", behavior: def, start: 10, syncs: []float64{100, 10, 10, 10}, want: []int32{10, 10, 10, 10}},
		{name: "a behavior without limits goes at once", behavior: fast, start: 2, syncs: []float64{500, 10}, want: []int32{22, 1}},
		{name: "an unread metric holds", behavior: fast, start: 5, syncs: []float64{-1, -1}, want: []int32{5, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &hpa{behavior: tt.behavior, min: 1, max: 100}
			current := tt.start
			for i, v := range tt.syncs {
				now := time.Duration(i) * 15 * time.Second
				current = h.sync(now, current, v, 10, v >= 0)
				h.prune(now)
				if current != tt.want[i] {
					t.Fatalf("after sync %d: %d replicas, want %d", i, current, tt.want[i])
				}
			}
		})
	}
}

// fixed serves a fixed replica count, as a policy that knew the load would.
type fixed int32

func (f fixed) Poll(Observation) Served {
	return Served{Value: float64(f), Target: 1, OK: true, Desired: int32(f)}
}

func TestRunCountsWhatAPlanCostsAndHowLongMessagesWait(t *testing.T) {
	steadyTrace := Trace{Start: []float64{0, 600}, Rates: []float64{400, 400}} // 20 min at 400/s
	tests := []struct {
		name     string
		replicas int32
		wantCost float64
		wantOver bool
	}{
		{name: "exactly the capacity: the fluid bound", replicas: 10, wantCost: 1},
		{name: "twice the capacity: twice the cost, nothing waits", replicas: 20, wantCost: 2},
		{name: "too little: messages wait past the target", replicas: 8, wantCost: 0.8, wantOver: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Behavior{Up: Rules{SelectPolicy: "Max", Policies: []ScalingPolicy{{Type: Pods, Value: 100, Period: time.Second}}},
				Down: Rules{SelectPolicy: "Max", Policies: []ScalingPolicy{{Type: Percent, Value: 100, Period: time.Second}}}}
			r, err := Run(Config{Trace: steadyTrace, PerReplica: 40, Behavior: &b, MinReplicas: tt.replicas, MaxReplicas: tt.replicas}, fixed(tt.replicas))
			if err != nil {
				t.Fatal(err)
			}
			if d := r.Cost() - tt.wantCost; d < -0.02 || d > 0.02 {
				t.Errorf("cost %.3f, want %.2f", r.Cost(), tt.wantCost)
			}
			if (r.OverTarget > 0) != tt.wantOver {
				t.Errorf("over target %.3f, want any: %v", r.OverTarget, tt.wantOver)
			}
			if r.Messages != 400*1200 {
				t.Errorf("%v messages, want %v", r.Messages, 400*1200)
			}
		})
	}
}

func TestRunStartupDelay(t *testing.T) {
	// From 1 replica to 10 for a load that appears: the new ones consume only after 30 s.
	tr := Trace{Start: []float64{0, 60, 120}, Rates: []float64{0, 400, 400}}
	var readyAt time.Duration
	_, err := Run(Config{Trace: tr, PerReplica: 40, Behavior: &Behavior{Up: Rules{SelectPolicy: "Max", Policies: []ScalingPolicy{{Type: Pods, Value: 100, Period: time.Second}}}},
		Trajectory: func(p Point) {
			if p.Ready == 10 && readyAt == 0 {
				readyAt = p.Time
			}
		}}, fixed(10))
	if err != nil {
		t.Fatal(err)
	}
	// The HPA first syncs at 7 s: 10 replicas, ready at 37 s.
	if readyAt != 37*time.Second {
		t.Errorf("ready at %v, want 37s", readyAt)
	}
}

func TestPlot(t *testing.T) {
	tr := Trace{Start: []float64{0, 60, 120}, Rates: []float64{100, 400, 50}}
	recs := []*Recorder{NewRecorder("fixed 5", 180, 50), NewRecorder("fixed 12", 180, 50)}
	for i, n := range []int32{5, 12} {
		if _, err := Run(Config{Trace: tr, PerReplica: 40, Trajectory: recs[i].Add}, fixed(n)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct{ format, starts string }{{"png", "\x89PNG"}, {"svg", "<?xml"}}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			var b strings.Builder
			if err := Plot(&b, tt.format, "a test", 30*time.Second, recs...); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(b.String(), tt.starts) || b.Len() < 1000 {
				t.Errorf("%s output of %d bytes starts %q", tt.format, b.Len(), b.String()[:min(8, b.Len())])
			}
		})
	}
	if err := Plot(&strings.Builder{}, "gif", "", time.Second, recs...); err == nil {
		t.Error("an unknown format was accepted")
	}
}
