package store

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/qscale/qscale/scaler/policy"
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
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.lookup(t)
	if !ok {
		return 0, time.Time{}, ErrUnknownMetric
	}
	for i, tr := range e.triggers {
		if MetricName(tr.Name) != metric {
			continue
		}
		now := s.now()
		st, at := e.states[i].State(now), e.states[i].At()
		switch {
		case !e.decided || i >= len(e.decision.Metrics):
			return 0, time.Time{}, fmt.Errorf("%w: not read yet", ErrNoValue)
		case !e.decision.Metrics[i].OK && st.Err != nil:
			return 0, time.Time{}, fmt.Errorf("%w: the source is failing", ErrNoValue)
		case !e.decision.Metrics[i].OK && st.Pending:
			return 0, time.Time{}, fmt.Errorf("%w: the rate one replica consumes at is not known yet", ErrNoValue)
		case !e.decision.Metrics[i].OK:
			return 0, time.Time{}, fmt.Errorf("%w: not read yet", ErrNoValue)
		case policy.Stale(st.Age, e.spec.PollingInterval):
			return 0, time.Time{}, fmt.Errorf("%w: the last poll was %s ago", ErrNoValue, st.Age.Round(time.Second))
		}
		return e.decision.Metrics[i].Milli, at, nil
	}
	return 0, time.Time{}, ErrUnknownMetric
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
