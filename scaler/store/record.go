package store

import (
	"fmt"
	"math"
	"time"

	"github.com/qscale/qscale/scaler/policy"
	"github.com/qscale/qscale/sources"
)

// Record stores the outcome of polling one trigger of a workload, and queues the Events its
// transitions call for: the first failure, the recovery, and each new warning. A trigger that
// is no longer configured (the workload changed while the poll ran) is not recorded.
func (s *Store) Record(t Target, trigger sources.Trigger, sample sources.Sample, at time.Time) {
	s.record(t, trigger, sample, at, true)
}

// RecordShared stores a sample that another replica polled and sent, as Record does a sample
// of this replica's. id names the trigger by its Identity; a sample of a trigger not
// configured here, or configured otherwise (the workload changed, and one of the two replicas
// has not seen it yet), is not recorded, and RecordShared returns false.
func (s *Store) RecordShared(t Target, id string, sample sources.Sample, at time.Time) bool {
	s.mu.RLock()
	var trigger sources.Trigger
	found := false
	if e, ok := s.targets[t]; ok && id != "" {
		for _, tr := range e.triggers {
			if tr.Identity() == id {
				trigger, found = tr, true
				break
			}
		}
	}
	s.mu.RUnlock()
	if found {
		s.record(t, trigger, sample, at, false)
	}
	return found
}

func (s *Store) record(t Target, trigger sources.Trigger, sample sources.Sample, at time.Time, here bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.targets[t]
	if !ok {
		return
	}
	i := indexOf(e.triggers, trigger)
	if i < 0 {
		return // reconfigured while the poll ran
	}
	r := &e.states[i]
	before := r.State(at)
	wasFailing := before.Polled && before.Err != nil
	o := policy.Observation{Poll: policy.Poll{Time: at, Ready: e.replicas.Ready, Replicas: e.replicas.Spec},
		Err: sample.Err, Value: sample.Value, Active: sample.Active}
	if c := sample.Counters; c != nil {
		o.Backlog, o.Produced, o.Consumed = c.Backlog, c.Produced, c.Consumed
		if c.Consumers > 0 && c.Consumers <= math.MaxInt32 {
			o.Consumers = int32(c.Consumers)
		}
	}
	r.Observe(o)
	switch {
	case sample.Err != nil && !wasFailing:
		e.events = append(e.events, Event{Warning: true, Reason: ReasonSourceError, Message: sample.Err.Error()})
	case sample.Err == nil && wasFailing:
		e.events = append(e.events, Event{Reason: ReasonSourceRecovered, Message: fmt.Sprintf("trigger %q reads its source again", trigger.Name)})
	}
	var seen map[string]string // nil for the many triggers without warnings: nothing held
	if len(sample.Warnings) > 0 {
		seen = make(map[string]string, len(sample.Warnings))
	}
	for _, w := range sample.Warnings {
		seen[w.Reason] = w.Message
		if r.warnings[w.Reason] != w.Message {
			e.events = append(e.events, Event{Warning: true, Reason: w.Reason, Message: fmt.Sprintf("trigger %q: %s", trigger.Name, w.Message)})
		}
	}
	r.warnings = seen
	s.observer.Sampled(t, trigger, sample, here)
}

// States returns what the decision sees of each trigger of a workload, in the order of its
// configuration, with the age of each sample by the Store's clock; nil for a workload the
// Store does not hold.
func (s *Store) States(t Target) []policy.TriggerState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.targets[t]
	if !ok {
		return nil
	}
	return e.statesAt(s.now())
}

func (e *entry) statesAt(now time.Time) []policy.TriggerState {
	states := make([]policy.TriggerState, len(e.states))
	for i, r := range e.states {
		states[i] = r.State(now)
	}
	return states
}

// Decide runs policy.Decide for a workload with its current replica counts, keeps the
// Decision for the metrics API, and queues the Events of fallback transitions. The counts
// are kept too: the next poll of a backlog-age trigger is read against them. It reports
// false for a workload that was never configured.
func (s *Store) Decide(t Target, r Replicas) (policy.Decision, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.targets[t]
	if !ok {
		return policy.Decision{}, false
	}
	e.replicas = r
	now := s.now()
	d := policy.Decide(policy.Input{Spec: e.spec, Triggers: e.statesAt(now), Replicas: r.Spec, Observed: r.Status, LastActive: e.lastActive, Now: now})
	switch {
	case d.Fallback && !e.decision.Fallback:
		e.events = append(e.events, Event{Warning: true, Reason: ReasonFallbackActive,
			Message: fmt.Sprintf("a source kept failing for %d polls: holding %d replicas (fallback-replicas, or the current count if higher)", e.spec.FallbackFailures, d.Desired)})
	case !d.Fallback && e.decision.Fallback && e.decided:
		e.events = append(e.events, Event{Reason: ReasonFallbackEnded, Message: "sources answer again: scaling on their values"})
	}
	e.decision, e.decided, e.lastActive = d, true, d.LastActive
	s.observer.Decided(t, e.triggers, d)
	return d, true
}

// Events removes and returns the Events queued for a workload.
func (s *Store) Events(t Target) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.targets[t]
	if !ok {
		return nil
	}
	out := e.events
	e.events = nil
	return out
}
