package scaler

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/qscale/qscale/scaler/policy"
	"github.com/qscale/qscale/scaler/spec"
	"github.com/qscale/qscale/sources"
)

// Kinds of workload, as they appear in the qscale.io/kind label selector of a metric.
const (
	KindDeployment  = "deployment"
	KindStatefulSet = "statefulset"
)

// Target identifies a scaled workload.
type Target struct {
	Namespace string
	Kind      string // KindDeployment or KindStatefulSet
	Name      string
}

func (t Target) String() string { return t.Namespace + "/" + t.Kind + "/" + t.Name }

// MetricName is the external metric name served for a trigger.
func MetricName(trigger string) string { return "qscale-" + trigger }

// Event is something to tell the user on the workload, as a Kubernetes Event.
type Event struct {
	Warning bool
	Reason  string
	Message string
}

// Reasons of the Events qscale records.
const (
	ReasonInvalidScalingConfig = "InvalidScalingConfig"
	ReasonScalingConfigValid   = "ScalingConfigValid"
	ReasonSourceError          = "SourceError"
	ReasonSourceRecovered      = "SourceRecovered"
	ReasonFallbackActive       = "FallbackActive"
	ReasonFallbackEnded        = "FallbackEnded"
	ReasonActivated            = "Activated"
	ReasonScaledToZero         = "ScaledToZero"
	ReasonPausedReplicas       = "PausedReplicas"
	ReasonHPAConflict          = "HPAConflict"
)

// Errors of Store.Value, told apart by the metrics API.
var (
	// ErrUnknownMetric: no configured trigger of that workload has that metric name.
	ErrUnknownMetric = errors.New("no such metric")
	// ErrNoValue: the trigger exists but has no fresh value to serve.
	ErrNoValue = errors.New("no fresh value")
)

// Store holds the latest sample of every trigger and the latest decision of every workload.
// It is safe for concurrent use.
type Store struct {
	now     func() time.Time
	metrics *Metrics

	mu      sync.RWMutex
	targets map[Target]*entry
	// byLabel finds the workloads whose name is longer than a label value, by the
	// NameLabel that their metrics' selectors carry.
	byLabel map[Target]Target
}

type entry struct {
	spec        *spec.Spec
	triggers    []sources.Trigger
	states      []triggerRecord
	decision    policy.Decision
	decided     bool
	lastActive  time.Time
	events      []Event
	secrets     []string // Secrets the annotations name, valid or not
	problem     string   // the current configuration error, "" when valid
	fingerprint string   // of what the configuration was last loaded from
	conflict    string   // why qscale cannot own the workload's HPA, "" when it can
	rejected    string   // the spec hash of an HPA the API server refused, "" when none
	rejection   string   // why it refused it
	everValid   bool
}

type triggerRecord struct {
	policy.TriggerState
	at       time.Time // when the latest poll finished
	warnings map[string]string
}

// NewStore returns an empty Store. now is the clock; metrics may be nil.
func NewStore(now func() time.Time, metrics *Metrics) *Store {
	return &Store{now: now, metrics: metrics, targets: map[Target]*entry{}, byLabel: map[Target]Target{}}
}

func (s *Store) get(t Target) *entry {
	e, ok := s.targets[t]
	if !ok {
		e = &entry{lastActive: s.now()}
		s.targets[t] = e
		if l := labelled(t); l != t {
			s.byLabel[l] = t
		}
	}
	return e
}

// labelled is t as its metrics' label selector names it.
func labelled(t Target) Target {
	return Target{Namespace: t.Namespace, Kind: t.Kind, Name: NameLabel(t.Name)}
}

// lookup returns the entry of t, given by name or by the label value of a long name.
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

// Configure records a workload's valid spec and compiled triggers. Samples of triggers whose
// configuration did not change are kept. It returns the triggers to poll, which are the ones
// already held when nothing changed, and whether they changed.
func (s *Store) Configure(t Target, config *spec.Spec, triggers []sources.Trigger) ([]sources.Trigger, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.get(t)
	if e.problem != "" {
		e.events = append(e.events, Event{Reason: ReasonScalingConfigValid, Message: "the qscale.io annotations are valid again"})
	}
	e.problem, e.everValid = "", true
	changed := !slices.EqualFunc(e.triggers, triggers, sources.Trigger.Equal)
	if changed {
		states := make([]triggerRecord, len(triggers))
		for i, tr := range triggers {
			if j := indexOf(e.triggers, tr); j >= 0 {
				states[i] = e.states[j]
			}
			states[i].Target = tr.Config.Target()
		}
		s.metrics.forgetTriggers(t, removed(e.triggers, triggers))
		e.triggers, e.states = triggers, states
	}
	e.spec = config
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

// Invalid records a configuration problem. It reports whether the problem is new, so that
// an Event is recorded once per distinct problem. A workload that was valid before keeps its
// last valid configuration, so it keeps scaling while its annotations are being fixed.
func (s *Store) Invalid(t Target, problem string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.get(t)
	if e.problem == problem {
		return false
	}
	e.problem = problem
	return true
}

// Conflict records why qscale cannot own the workload's HPA ("" when it can), and reports
// whether that is news, so that an Event is recorded once per distinct conflict.
func (s *Store) Conflict(t Target, msg string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.get(t)
	if e.conflict == msg {
		return false
	}
	e.conflict = msg
	return msg != ""
}

// RejectedHPA returns the spec hash of the HPA that the API server last refused for the
// workload, "" when it refused none.
func (s *Store) RejectedHPA(t Target) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if e, ok := s.targets[t]; ok {
		return e.rejected
	}
	return ""
}

// RejectHPA records that the API server refused the HPA of spec hash with msg, and reports
// whether that is news, so that an Event is recorded once per distinct refusal.
func (s *Store) RejectHPA(t Target, hash, msg string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.get(t)
	news := e.rejection != msg
	e.rejected, e.rejection = hash, msg
	return news
}

// AcceptHPA records that the API server took the workload's HPA, and reports whether it had
// refused one before.
func (s *Store) AcceptHPA(t Target) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.targets[t]
	if !ok || e.rejection == "" {
		return false
	}
	e.rejected, e.rejection = "", ""
	return true
}

// current returns the workload's spec and triggers.
func (s *Store) current(t Target) (*spec.Spec, []sources.Trigger) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if e, ok := s.targets[t]; ok {
		return e.spec, e.triggers
	}
	return nil, nil
}

// EverValid reports whether the workload has had a valid configuration since qscale started.
func (s *Store) EverValid(t Target) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.targets[t]
	return ok && e.everValid
}

// SetSecrets records the Secrets a workload's annotations name.
func (s *Store) SetSecrets(t Target, names []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.get(t).secrets = names
}

// secretNames returns the Secrets a workload's annotations named at the last load.
func (s *Store) secretNames(t Target) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if e, ok := s.targets[t]; ok {
		return e.secrets
	}
	return nil
}

// Fingerprint returns the fingerprint recorded by SetFingerprint, "" for an unknown workload.
func (s *Store) Fingerprint(t Target) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if e, ok := s.targets[t]; ok {
		return e.fingerprint
	}
	return ""
}

// SetFingerprint records the fingerprint of what the workload's configuration was loaded from.
func (s *Store) SetFingerprint(t Target, fp string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.get(t).fingerprint = fp
}

// NamedSecrets returns every Secret that some workload's annotations name, once each.
func (s *Store) NamedSecrets() []types.NamespacedName {
	s.mu.RLock()
	defer s.mu.RUnlock()
	seen := map[types.NamespacedName]bool{}
	var out []types.NamespacedName
	for t, e := range s.targets {
		for _, name := range e.secrets {
			k := types.NamespacedName{Namespace: t.Namespace, Name: name}
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	return out
}

// UsingSecret returns the workloads in namespace whose annotations name the Secret.
func (s *Store) UsingSecret(namespace, name string) []Target {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Target
	for t, e := range s.targets {
		if t.Namespace == namespace && contains(e.secrets, name) {
			out = append(out, t)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Remove forgets a workload.
func (s *Store) Remove(t Target) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.targets[t]; ok {
		s.metrics.forgetTarget(t, e.triggers)
		delete(s.targets, t)
		delete(s.byLabel, labelled(t))
	}
}

// Record stores the outcome of polling one trigger of a workload, and queues the Events its
// transitions call for: the first failure, the recovery, and each new warning.
func (s *Store) Record(t Target, trigger sources.Trigger, sample sources.Sample, at time.Time) {
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
	wasFailing := r.Polled && r.Err != nil
	r.Polled, r.at = true, at
	r.Err = sample.Err
	if sample.Err != nil {
		r.Failures++
		if !wasFailing {
			e.events = append(e.events, Event{Warning: true, Reason: ReasonSourceError, Message: sample.Err.Error()})
		}
	} else {
		r.Value, r.Active, r.Failures = sample.Value, sample.Active, 0
		if wasFailing {
			e.events = append(e.events, Event{Reason: ReasonSourceRecovered, Message: fmt.Sprintf("trigger %q reads its source again", trigger.Name)})
		}
	}
	seen := map[string]string{}
	for _, w := range sample.Warnings {
		seen[w.Reason] = w.Message
		if r.warnings[w.Reason] != w.Message {
			e.events = append(e.events, Event{Warning: true, Reason: w.Reason, Message: fmt.Sprintf("trigger %q: %s", trigger.Name, w.Message)})
		}
	}
	r.warnings = seen
	s.metrics.recordSample(t, trigger, sample)
}

// indexOf returns the index of the trigger equal to t, or -1.
func indexOf(triggers []sources.Trigger, t sources.Trigger) int {
	return slices.IndexFunc(triggers, t.Equal)
}

// Decide runs the replica math for a workload with its current replica counts, keeps the
// Decision for the metrics API, and queues the Events of fallback transitions. It reports
// false for a workload that has no valid configuration.
func (s *Store) Decide(t Target, replicas, observed int32) (policy.Decision, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.targets[t]
	if !ok || e.spec == nil {
		return policy.Decision{}, false
	}
	now := s.now()
	states := make([]policy.TriggerState, len(e.states))
	for i, r := range e.states {
		states[i] = r.TriggerState
		if r.Polled {
			states[i].Age = now.Sub(r.at)
		}
	}
	d := policy.Decide(policy.Input{Spec: e.spec.Policy(), Triggers: states, Replicas: replicas, Observed: observed, LastActive: e.lastActive, Now: now})
	switch {
	case d.Fallback && !e.decision.Fallback:
		e.events = append(e.events, Event{Warning: true, Reason: ReasonFallbackActive,
			Message: fmt.Sprintf("a source kept failing for %d polls: holding %d replicas (fallback-replicas, or the current count if higher)", e.spec.FallbackFailures, d.Desired)})
	case !d.Fallback && e.decision.Fallback && e.decided:
		e.events = append(e.events, Event{Reason: ReasonFallbackEnded, Message: "sources answer again: scaling on their values"})
	}
	e.decision, e.decided, e.lastActive = d, true, d.LastActive
	s.metrics.recordDecision(t, e.triggers, d)
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

// Value returns the value served for a trigger of a workload (named by its name, or by the
// NameLabel of a long one), in thousandths, with the time of the poll it comes from. It
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
		r := e.states[i]
		switch {
		case !e.decided || i >= len(e.decision.Metrics):
			return 0, time.Time{}, fmt.Errorf("%w: not read yet", ErrNoValue)
		case !e.decision.Metrics[i].OK && r.Err != nil:
			return 0, time.Time{}, fmt.Errorf("%w: the source is failing", ErrNoValue)
		case !e.decision.Metrics[i].OK:
			return 0, time.Time{}, fmt.Errorf("%w: not read yet", ErrNoValue)
		case policy.Stale(s.now().Sub(r.at), e.spec.PollingInterval):
			return 0, time.Time{}, fmt.Errorf("%w: the last poll was %s ago", ErrNoValue, s.now().Sub(r.at).Round(time.Second))
		}
		return e.decision.Metrics[i].Milli, r.at, nil
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
