package store

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/qscale/qscale/scaler/policy"
	"github.com/qscale/qscale/sources"
)

// Errors of Value, told apart by the metrics API.
var (
	// ErrUnknownMetric: no configured trigger of that workload has that metric name.
	ErrUnknownMetric = errors.New("no such metric")
	// ErrNoValue: the trigger exists but has no fresh value to serve.
	ErrNoValue = errors.New("no fresh value")
)

// Value returns the value served for a trigger of a workload (named by its name, or by the
// label value of its name), in thousandths, with the time of the poll it comes from. It
// fails with ErrUnknownMetric or ErrNoValue.
func (s *Store) Value(t Target, metric string) (int64, time.Time, error) {
	m, at, err := s.metric(t, metric)
	return m.Milli, at, err
}

// RawValue is Value before the steering that lands the HPA on the loop's target (see
// policy.Decision): the trigger's own figure, or its fallback value, for people and tools
// rather than for the HPA. It is served when Value is, and fails as Value does.
func (s *Store) RawValue(t Target, metric string) (int64, time.Time, error) {
	m, at, err := s.metric(t, metric)
	return policy.Milli(m.Raw), at, err
}

// metric returns what the latest decision serves for a trigger, when it may be served.
func (s *Store) metric(t Target, metric string) (policy.Metric, time.Time, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.lookup(t)
	if !ok {
		return policy.Metric{}, time.Time{}, ErrUnknownMetric
	}
	i := slices.IndexFunc(e.triggers, func(tr sources.Trigger) bool { return MetricName(tr.Name) == metric })
	if i < 0 {
		return policy.Metric{}, time.Time{}, ErrUnknownMetric
	}
	st, at := e.states[i].State(s.now()), e.states[i].At()
	switch {
	case !e.decided || i >= len(e.decision.Metrics):
		return policy.Metric{}, time.Time{}, fmt.Errorf("%w: not read yet", ErrNoValue)
	case !e.decision.Metrics[i].OK && st.Err != nil:
		return policy.Metric{}, time.Time{}, fmt.Errorf("%w: the source is failing", ErrNoValue)
	case !e.decision.Metrics[i].OK && st.Pending:
		return policy.Metric{}, time.Time{}, fmt.Errorf("%w: the rate one replica consumes at is not known yet", ErrNoValue)
	case !e.decision.Metrics[i].OK:
		return policy.Metric{}, time.Time{}, fmt.Errorf("%w: not read yet", ErrNoValue)
	case policy.Stale(st.Age, e.spec.PollingInterval):
		return policy.Metric{}, time.Time{}, fmt.Errorf("%w: the last poll was %s ago", ErrNoValue, st.Age.Round(time.Second))
	}
	return e.decision.Metrics[i], at, nil
}

// MetricNames returns the metric names of every configured trigger, sorted, for discovery.
func (s *Store) MetricNames() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	set := map[string]bool{}
	for _, e := range s.targets {
		for _, tr := range e.triggers {
			set[MetricName(tr.Name)] = true
		}
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
