// Package status is the state of a scaled workload as qscale records it on the workload
// itself, in the qscale.io/status annotation: whether its configuration is valid, whether it
// is active, in fallback or paused, since when, and what it scales on.
//
// Status is the annotation's content. Next computes it, a pure function of the Status the
// workload carries and an Observation of its state; Parse and Status.Encode read and write
// the annotation's compact JSON. A Status holds nothing that moves with each poll (no value,
// no desired replica count), so that qscale writes it when the workload's state changes and
// never because a poll happened.
package status

import (
	"encoding/json"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/qscale/qscale/scaler/spec"
)

// Annotation is the workload annotation that holds a Status.
const Annotation = spec.AnnotationStatus

// Status is the state of a workload, as its qscale.io/status annotation holds it.
type Status struct {
	// Ready: qscale can apply the workload's qscale.io annotations. A workload that was
	// valid once and is not any more goes on scaling on its last valid configuration.
	Ready bool `json:"ready"`
	// Reason says why it is not Ready, in at most ReasonLimit bytes; "" when Ready.
	Reason string `json:"reason,omitempty"`
	// Active: some trigger is above its activation threshold.
	Active bool `json:"active"`
	// Fallback: some trigger keeps failing and is served its fallback value.
	Fallback bool `json:"fallback"`
	// Paused: qscale.io/paused or qscale.io/paused-replicas holds the workload.
	Paused bool `json:"paused"`
	// PausedReplicas is qscale.io/paused-replicas while it holds the workload.
	PausedReplicas *int32 `json:"pausedReplicas,omitempty"`
	// Since holds when each condition above last changed.
	Since Since `json:"since"`
	// Triggers are the triggers qscale scales the workload on: those of its last valid
	// configuration, none while it never had one.
	Triggers []Trigger `json:"triggers,omitempty"`
	// Observed is spec.ConfigDigest of the annotations this Status describes; a reader whose
	// digest of the workload differs sees a Status that qscale has not caught up with yet.
	Observed string `json:"observed"`
}

// Since holds the time of the last change of each condition, to the second.
type Since struct {
	Ready    time.Time `json:"ready"`
	Active   time.Time `json:"active"`
	Fallback time.Time `json:"fallback"`
	Paused   time.Time `json:"paused"`
}

// Trigger is what a Status tells of one trigger: never a parameter that may hold a secret.
type Trigger struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Target is the value per replica (lagThreshold, value, targetQueueSize), as a decimal.
	Target string `json:"target,omitempty"`
	// TargetBacklogAge is set instead of Target for a trigger that scales on backlog age.
	TargetBacklogAge string `json:"targetBacklogAge,omitempty"`
}

// ReasonLimit is the longest Reason that Next keeps, the length of an Event note: the reason
// is the InvalidScalingConfig Event's message, and the annotation stays small.
const ReasonLimit = 1000

// Observation is the state of a workload that a Status is computed from.
type Observation struct {
	// Problem says why qscale cannot apply the configuration; "" when it can.
	Problem          string
	Active, Fallback bool
	// Unread: no trigger has been read since qscale started or the triggers changed, so
	// whether the workload is active or in fallback is not known yet; they keep the values
	// the previous Status holds, and a restart of qscale costs no write.
	Unread         bool
	Paused         bool
	PausedReplicas *int32
	Triggers       []Trigger
	Observed       string
}

// Next is the Status of a workload in the state o at now, given the Status it carries
// (nil when it has none). Each condition keeps its Since while it keeps its value, so that
// the same state gives the same Status, byte for byte, however often it is computed.
func Next(prev *Status, o Observation, now time.Time) Status {
	now = now.UTC().Truncate(time.Second)
	s := Status{
		Ready: o.Problem == "", Reason: o.Problem,
		Active: o.Active, Fallback: o.Fallback, Paused: o.Paused,
		Triggers: slices.Clone(o.Triggers), Observed: o.Observed,
		Since: Since{Ready: now, Active: now, Fallback: now, Paused: now},
	}
	if len(s.Reason) > ReasonLimit {
		s.Reason = capReason(s.Reason)
	}
	if o.Paused && o.PausedReplicas != nil {
		n := *o.PausedReplicas
		s.PausedReplicas = &n
	}
	if prev == nil {
		return s
	}
	if o.Unread && !o.Paused {
		s.Active, s.Fallback = prev.Active, prev.Fallback
	}
	keep := func(since *time.Time, was, is bool, then time.Time) {
		if was == is && !then.IsZero() {
			*since = then
		}
	}
	keep(&s.Since.Ready, prev.Ready, s.Ready, prev.Since.Ready)
	keep(&s.Since.Active, prev.Active, s.Active, prev.Since.Active)
	keep(&s.Since.Fallback, prev.Fallback, s.Fallback, prev.Since.Fallback)
	keep(&s.Since.Paused, prev.Paused, s.Paused, prev.Since.Paused)
	return s
}

// capReason shortens a reason to ReasonLimit bytes at a character boundary, marking the cut.
func capReason(r string) string {
	const mark = "…"
	cut := ReasonLimit - len(mark)
	for cut > 0 && !utf8.RuneStart(r[cut]) {
		cut--
	}
	return r[:cut] + mark
}

// LastTransition is the time of the latest change of any condition.
func (s Status) LastTransition() time.Time {
	t := s.Since.Ready
	for _, u := range []time.Time{s.Since.Active, s.Since.Fallback, s.Since.Paused} {
		if u.After(t) {
			t = u
		}
	}
	return t
}

// Encode is the annotation's value for s: compact JSON, the same bytes for equal Statuses.
func (s Status) Encode() string {
	b, _ := json.Marshal(s) //nolint:errchkjson // strings, booleans, numbers and times always marshal
	return string(b)
}

// Parse reads an annotation's value. Fields it does not know are ignored, so that an older
// reader understands what a newer qscale writes.
func Parse(v string) (*Status, error) {
	var s Status
	if err := json.Unmarshal([]byte(v), &s); err != nil {
		return nil, err
	}
	return &s, nil
}
