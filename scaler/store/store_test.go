package store_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/qscale/qscale/scaler/policy"
	"github.com/qscale/qscale/scaler/store"
	"github.com/qscale/qscale/sources"
)

// target is a Config with a target of 10 per replica.
type target struct{ conn string }

func (c *target) Connection() string           { return c.conn }
func (*target) Target() float64                { return 10 }
func (*target) Validate() []sources.FieldError { return nil }

func trigger(name string) sources.Trigger {
	return sources.Trigger{Type: "fake", Name: name, Config: &target{conn: "c"}}
}

// observed lists what an Observer was told, one line per call.
type observed struct{ calls []string }

func names(triggers []sources.Trigger) string {
	var out []string
	for _, tr := range triggers {
		out = append(out, tr.Name)
	}
	return strings.Join(out, ",")
}

func (o *observed) Sampled(t store.Target, tr sources.Trigger, s sources.Sample, _ bool) {
	o.calls = append(o.calls, fmt.Sprintf("sampled %s %s %v", t.Name, tr.Name, s.Value))
}

func (o *observed) Decided(t store.Target, triggers []sources.Trigger, d policy.Decision) {
	o.calls = append(o.calls, fmt.Sprintf("decided %s %s %d", t.Name, names(triggers), d.Desired))
}

func (o *observed) Dropped(t store.Target, triggers []sources.Trigger) {
	o.calls = append(o.calls, fmt.Sprintf("dropped %s %s", t.Name, names(triggers)))
}

func (o *observed) Removed(t store.Target, triggers []sources.Trigger) {
	o.calls = append(o.calls, fmt.Sprintf("removed %s %s", t.Name, names(triggers)))
}

var (
	t0   = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	spec = policy.Spec{MinReplicas: 1, MaxReplicas: 100, PollingInterval: 10 * time.Second, CooldownPeriod: time.Minute,
		FallbackFailures: 3, ScaleUpTolerance: policy.DefaultTolerance, ScaleDownTolerance: policy.DefaultTolerance}
	orders = store.Target{Namespace: "shop", Kind: store.KindDeployment, Name: "orders"}
)

// The Observer hears of every sample recorded, every decision and every trigger forgotten,
// and of nothing that the Store did not record.
func TestObserver(t *testing.T) {
	o := &observed{}
	s := store.New(func() time.Time { return t0 }, store.Options{Observer: o})
	a, b := trigger("a"), trigger("b")
	s.Configure(orders, spec, []sources.Trigger{a, b})
	s.Record(orders, a, sources.Sample{Value: 40}, t0)
	s.Record(orders, b, sources.Sample{Value: 20}, t0)
	s.Decide(orders, store.Replicas{Spec: 4, Status: 4})
	s.Configure(orders, spec, []sources.Trigger{a})
	s.Record(orders, b, sources.Sample{Value: 99}, t0) // a poll that finished after b went
	s.Record(store.Target{Namespace: "shop", Kind: store.KindDeployment, Name: "unknown"}, a, sources.Sample{Value: 1}, t0)
	s.Remove(orders)
	want := []string{
		"sampled orders a 40", "sampled orders b 20", "decided orders a,b 4",
		"dropped orders b", "removed orders a",
	}
	if !slices.Equal(o.calls, want) {
		t.Errorf("the Observer was told\n%s\nwant\n%s", strings.Join(o.calls, "\n"), strings.Join(want, "\n"))
	}
}

func TestValue(t *testing.T) {
	now := t0
	s := store.New(func() time.Time { return now }, store.Options{Label: func(name string) string { return "label-" + name }})
	a := trigger("a")
	s.Configure(orders, spec, []sources.Trigger{a})
	byLabel := store.Target{Namespace: "shop", Kind: store.KindDeployment, Name: "label-orders"}
	if _, _, err := s.Value(orders, "qscale-a"); !errors.Is(err, store.ErrNoValue) {
		t.Fatalf("before a poll: %v, want ErrNoValue", err)
	}
	s.Record(orders, a, sources.Sample{Value: 42, Active: true}, now)
	s.Decide(orders, store.Replicas{Spec: 5, Status: 5})
	tests := []struct {
		name    string
		target  store.Target
		metric  string
		after   time.Duration
		want    int64
		wantErr error
	}{
		{name: "by name", target: orders, metric: "qscale-a", want: 42000},
		{name: "by label value", target: byLabel, metric: "qscale-a", want: 42000},
		{name: "three intervals on: still served", target: orders, metric: "qscale-a", after: 30 * time.Second, want: 42000},
		{name: "stale", target: orders, metric: "qscale-a", after: 31 * time.Second, wantErr: store.ErrNoValue},
		{name: "unknown metric", target: orders, metric: "qscale-b", wantErr: store.ErrUnknownMetric},
		{name: "unknown workload", target: store.Target{Namespace: "shop", Kind: store.KindDeployment, Name: "x"}, metric: "qscale-a", wantErr: store.ErrUnknownMetric},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now = t0.Add(tt.after)
			v, at, err := s.Value(tt.target, tt.metric)
			switch {
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			case tt.wantErr == nil && (err != nil || v != tt.want || !at.Equal(t0)):
				t.Errorf("Value = %d at %v, %v; want %d at %v", v, at, err, tt.want, t0)
			}
		})
	}
	if got := s.MetricNames(); !slices.Equal(got, []string{"qscale-a"}) {
		t.Errorf("MetricNames = %v", got)
	}
	s.Remove(orders)
	if _, _, err := s.Value(byLabel, "qscale-a"); !errors.Is(err, store.ErrUnknownMetric) {
		t.Errorf("a removed workload is still found by its label value: %v", err)
	}
}

// A source's failure and recovery, and fallback starting and ending, are each told once.
func TestEvents(t *testing.T) {
	s := store.New(func() time.Time { return t0 }, store.Options{})
	a := trigger("a")
	fallback := spec
	fallback.FallbackReplicas = 2
	s.Configure(orders, fallback, []sources.Trigger{a})
	down := sources.Sample{Err: errors.New("down")}
	var reasons []string
	step := func(sample sources.Sample) {
		s.Record(orders, a, sample, t0)
		s.Decide(orders, store.Replicas{Spec: 1, Status: 1})
		for _, e := range s.Events(orders) {
			reasons = append(reasons, e.Reason)
		}
	}
	for range 4 {
		step(down)
	}
	step(sources.Sample{Value: 5, Warnings: []sources.Warning{{Reason: "Odd", Message: "odd"}}})
	step(sources.Sample{Value: 5, Warnings: []sources.Warning{{Reason: "Odd", Message: "odd"}}})
	want := []string{store.ReasonSourceError, store.ReasonFallbackActive, store.ReasonSourceRecovered, "Odd", store.ReasonFallbackEnded}
	if !slices.Equal(reasons, want) {
		t.Errorf("Events %v, want %v", reasons, want)
	}
	if got := s.States(orders); len(got) != 1 || got[0].Failures != 0 || got[0].Value != 5 {
		t.Errorf("States = %+v", got)
	}
}
