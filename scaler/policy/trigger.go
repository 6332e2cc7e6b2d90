package policy

import (
	"math"
	"time"
)

// AgeTarget is the HPA's AverageValue target of a backlog-age trigger's metric: the value
// served is the replica count the trigger asks for, one per replica.
const AgeTarget = 1.0

// Trigger is one trigger's policy between polls: the TriggerState that Decide reads, kept up
// to date by Observe, and, for a backlog-age trigger, the rates it learns. Every poll becomes
// a TriggerState here, in `qscale run` as in a program that replays polls.
type Trigger struct {
	rates *Rates // nil for a threshold trigger
	state TriggerState
	at    time.Time // when the latest poll finished
}

// NewTrigger returns a threshold trigger: it asks for ceil(value / target) replicas.
func NewTrigger(target float64) *Trigger {
	return &Trigger{state: TriggerState{Target: target}}
}

// NewAgeTrigger returns a backlog-age trigger: it asks for the replicas that keep the oldest
// waiting message younger than cfg.Target, from the rates its polls' counts show.
func NewAgeTrigger(cfg BacklogAge) *Trigger {
	return &Trigger{rates: NewRates(cfg), state: TriggerState{Target: AgeTarget, Replicas: true}}
}

// Observation is what one poll of a trigger read, with the workload's replicas then: the
// Poll a backlog-age trigger learns from (its counts are left zero for a threshold trigger),
// and the trigger's value.
type Observation struct {
	Poll
	// Err is set when the poll failed; nothing else is read then.
	Err error
	// Value and Active are the trigger's value and whether it is above its activation
	// threshold.
	Value  float64
	Active bool
}

// Observe takes one poll into account: a failure counts towards fallback; a value replaces
// the last; a backlog-age trigger learns from the counts and asks for the replicas its rates
// call for (Pending while it knows no per-replica rate yet).
func (t *Trigger) Observe(o Observation) {
	s := &t.state
	s.Polled, t.at = true, o.Time
	s.Err = o.Err
	if o.Err != nil {
		s.Failures++
		return
	}
	s.Failures, s.Active = 0, o.Active
	if t.rates == nil {
		s.Value = o.Value
		return
	}
	t.rates.Observe(o.Poll)
	n, ok := t.rates.Replicas()
	s.Pending = !ok
	s.Value = math.Ceil(n)
}

// State is what Decide reads of the trigger at now.
func (t *Trigger) State(now time.Time) TriggerState {
	s := t.state
	if s.Polled {
		s.Age = now.Sub(t.at)
	}
	return s
}

// At is when the latest poll finished; zero before the first.
func (t *Trigger) At() time.Time { return t.at }

// Rates returns a backlog-age trigger's rates; nil for a threshold trigger.
func (t *Trigger) Rates() *Rates { return t.rates }

// Workload is the policy of one workload driven poll by poll: its triggers and when one was
// last active. It is the entry point for a program that replays polls: Observe each poll on
// its Trigger, then Decide.
type Workload struct {
	spec       Spec
	triggers   []*Trigger
	lastActive time.Time
}

// NewWorkload returns the policy of a workload with spec and triggers, started at start.
func NewWorkload(spec Spec, start time.Time, triggers ...*Trigger) *Workload {
	return &Workload{spec: spec, triggers: triggers, lastActive: start}
}

// Trigger returns the workload's i-th trigger.
func (w *Workload) Trigger(i int) *Trigger { return w.triggers[i] }

// Decide runs Decide with the triggers' states at now and the workload's replicas
// (spec.replicas and status.replicas), and remembers when a trigger was last active.
func (w *Workload) Decide(now time.Time, replicas, observed int32) Decision {
	states := make([]TriggerState, len(w.triggers))
	for i, t := range w.triggers {
		states[i] = t.State(now)
	}
	d := Decide(Input{Spec: w.spec, Triggers: states, Replicas: replicas, Observed: observed, LastActive: w.lastActive, Now: now})
	w.lastActive = d.LastActive
	return d
}
