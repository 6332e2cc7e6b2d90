// Package store holds qscale's latest samples and decisions, and nothing else.
//
// A Store keeps, for each Target it is given by Configure, the policy.Spec and the triggers
// of the workload, the latest outcome of polling each trigger (Record), and the latest
// policy.Decision (Decide). What the external metrics API serves is read from it by Value
// and MetricNames, which never wait on a broker. The Events that samples and decisions call
// for (a source failing or recovering, fallback starting or ending) are queued per workload
// until Events takes them. An Observer, when given, is told of every sample and decision and
// of every trigger forgotten, so that they can be exported.
package store

import (
	"slices"
	"sync"
	"time"

	"github.com/qscale/qscale/scaler/policy"
	"github.com/qscale/qscale/sources"
)

// Options are the optional parts of a Store. Zero values take the defaults stated.
type Options struct {
	// Label is the value of the label by which the metrics API names a workload, where it
	// differs from the workload's name (a long name is shortened); default: the name itself.
	Label func(name string) string
	// Observer is told of samples, decisions and forgotten triggers; default: none.
	Observer Observer
}

// Store holds the latest sample of every trigger and the latest decision of every workload.
// It is safe for concurrent use.
type Store struct {
	now      func() time.Time
	label    func(string) string
	observer Observer

	mu      sync.RWMutex
	targets map[Target]*entry
	// byLabel finds the workloads whose name differs from its label value, by that value.
	byLabel map[Target]Target
}

type entry struct {
	spec       policy.Spec
	triggers   []sources.Trigger
	states     []triggerRecord
	replicas   Replicas // as the latest decision saw them
	decision   policy.Decision
	decided    bool
	lastActive time.Time
	events     []Event
}

type triggerRecord struct {
	*policy.Trigger
	warnings map[string]string
}

// Replicas are a workload's replica counts.
type Replicas struct {
	Spec   int32 // spec.replicas
	Status int32 // status.replicas: the count the HPA divides by
	Ready  int32 // status.readyReplicas: those that consume
}

// policyOf returns the policy of a trigger: backlog-age when it has targetBacklogAge, else
// its threshold.
func policyOf(tr sources.Trigger, spec policy.Spec) *policy.Trigger {
	if age, ok := sources.BacklogAgeOf(tr.Config); ok {
		return policy.NewAgeTrigger(policy.BacklogAge{Target: age.Age, ReplicaThroughput: age.ReplicaThroughput, PollingInterval: spec.PollingInterval})
	}
	return policy.NewTrigger(tr.Config.Target())
}

// MetricTarget is the HPA's AverageValue target of a trigger's metric: its threshold, or
// for a backlog-age trigger policy.AgeTarget (its value counts replicas).
func MetricTarget(tr sources.Trigger) float64 {
	if _, ok := sources.BacklogAgeOf(tr.Config); ok {
		return policy.AgeTarget
	}
	return tr.Config.Target()
}

// New returns an empty Store. now is its clock.
func New(now func() time.Time, o Options) *Store {
	if o.Label == nil {
		o.Label = func(name string) string { return name }
	}
	if o.Observer == nil {
		o.Observer = noObserver{}
	}
	return &Store{now: now, label: o.Label, observer: o.Observer, targets: map[Target]*entry{}, byLabel: map[Target]Target{}}
}

// Now is the time by the Store's clock, by which the age of a sample is judged.
func (s *Store) Now() time.Time { return s.now() }

func (s *Store) get(t Target) *entry {
	e, ok := s.targets[t]
	if !ok {
		e = &entry{lastActive: s.now()}
		s.targets[t] = e
		if l := s.labelled(t); l != t {
			s.byLabel[l] = t
		}
	}
	return e
}

// labelled is t as its metrics' label selector names it.
func (s *Store) labelled(t Target) Target {
	return Target{Namespace: t.Namespace, Kind: t.Kind, Name: s.label(t.Name)}
}

// lookup returns the entry of t, given by name or by the label value of its name.
func (s *Store) lookup(t Target) (*entry, bool) {
	if e, ok := s.targets[t]; ok {
		return e, true
	}
	if named, ok := s.byLabel[t]; ok {
		e, ok := s.targets[named]
		return e, ok
	}
	return nil, false
}

// Configure records a workload's spec and compiled triggers. Samples of triggers whose
// configuration did not change are kept. It returns the triggers to poll, which are the ones
// already held when nothing changed, and whether they changed.
func (s *Store) Configure(t Target, spec policy.Spec, triggers []sources.Trigger) ([]sources.Trigger, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.get(t)
	changed := !slices.EqualFunc(e.triggers, triggers, sources.Trigger.Equal)
	if changed {
		states := make([]triggerRecord, len(triggers))
		for i, tr := range triggers {
			if j := indexOf(e.triggers, tr); j >= 0 && e.spec.PollingInterval == spec.PollingInterval {
				states[i] = e.states[j]
			} else {
				states[i].Trigger = policyOf(tr, spec)
			}
		}
		if gone := removed(e.triggers, triggers); len(gone) > 0 {
			s.observer.Dropped(t, gone)
		}
		e.triggers, e.states = triggers, states
	}
	e.spec = spec
	return e.triggers, changed
}

// removed returns the triggers of old that are not in now.
func removed(old, now []sources.Trigger) []sources.Trigger {
	var out []sources.Trigger
	for _, tr := range old {
		if indexOf(now, tr) < 0 {
			out = append(out, tr)
		}
	}
	return out
}

// indexOf returns the index of the trigger equal to t, or -1.
func indexOf(triggers []sources.Trigger, t sources.Trigger) int {
	return slices.IndexFunc(triggers, t.Equal)
}

// Remove forgets a workload.
func (s *Store) Remove(t Target) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.targets[t]; ok {
		s.observer.Removed(t, e.triggers)
		delete(s.targets, t)
		delete(s.byLabel, s.labelled(t))
	}
}
