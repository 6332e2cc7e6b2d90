// Package share carries the samples one qscale replica polls to the others, so that every
// replica holds every value while each trigger is polled once cluster-wide.
//
// After each poll, the replica that owns the connection sends its samples to every other live
// member (Sender) as one POST to Path on the member's metrics API server, whose handler chain
// authenticates and authorizes the caller as for any request; Handler records them in the
// receiving replica's Store. A sample travels with its age rather than a time, so that
// replicas whose clocks disagree judge its staleness alike. A peer is another qscale, but
// what it sends is checked as any input is: a sample that does not hold up is dropped.
package share

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/qscale/qscale/scaler/store"
	"github.com/qscale/qscale/sources"
)

// Path is where a replica's metrics API server takes the samples of the others. Callers need
// the RBAC right to post to this non-resource URL.
const Path = "/qscale/v1/samples"

// Limits of what a replica takes from another.
const (
	maxBody     = 32 << 20 // a batch of every sample of 10,000 workloads is about 3 MiB
	maxAge      = time.Minute
	maxText     = 2048 // bytes of an error or a warning
	maxWarnings = 16
)

// Batch is what one POST carries.
type Batch struct {
	// From is the sender's identity, for logs.
	From    string   `json:"from"`
	Samples []Sample `json:"samples"`
}

// Sample is one trigger's poll as it travels.
type Sample struct {
	Namespace string `json:"namespace"`
	Kind      string `json:"kind"`
	Workload  string `json:"workload"`
	// Trigger is the trigger's sources.Trigger.Identity: both replicas must hold the same
	// configuration for the sample to be recorded.
	Trigger string `json:"trigger"`
	// AgeMillis is how long before sending the poll ended.
	AgeMillis int64     `json:"ageMillis"`
	Value     float64   `json:"value"`
	Active    bool      `json:"active,omitempty"`
	Error     string    `json:"error,omitempty"`
	Warnings  []Warning `json:"warnings,omitempty"`
	Counters  *Counters `json:"counters,omitempty"`
}

// Warning is a sources.Warning as it travels.
type Warning struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// Counters are sources.Counters as they travel.
type Counters struct {
	Backlog   float64 `json:"backlog"`
	Produced  float64 `json:"produced"`
	Consumed  float64 `json:"consumed"`
	Consumers int     `json:"consumers"`
}

// Polled is a sample as the Poller hands it over, before it travels.
type Polled struct {
	Target  store.Target
	Trigger sources.Trigger
	Sample  sources.Sample
	At      time.Time
}

// encode turns a poll into what travels, aged as of now.
func encode(p Polled, now time.Time) Sample {
	s := Sample{Namespace: p.Target.Namespace, Kind: p.Target.Kind, Workload: p.Target.Name, Trigger: p.Trigger.Identity(),
		AgeMillis: max(0, now.Sub(p.At).Milliseconds()), Value: p.Sample.Value, Active: p.Sample.Active}
	if p.Sample.Err != nil {
		s.Error = p.Sample.Err.Error()
	}
	for _, w := range p.Sample.Warnings {
		s.Warnings = append(s.Warnings, Warning(w))
	}
	if c := p.Sample.Counters; c != nil {
		s.Counters = &Counters{Backlog: c.Backlog, Produced: c.Produced, Consumed: c.Consumed, Consumers: c.Consumers}
	}
	return s
}

// decode checks a sample that arrived and returns its workload, its sample, and the time its
// poll ended by the clock of now.
func decode(s Sample, now time.Time) (store.Target, sources.Sample, time.Time, error) {
	t := store.Target{Namespace: s.Namespace, Kind: s.Kind, Name: s.Workload}
	if err := checkHeader(s); err != nil {
		return t, sources.Sample{}, time.Time{}, err
	}
	out, err := decodeResult(s)
	if err != nil {
		return t, sources.Sample{}, time.Time{}, err
	}
	return t, out, now.Add(-time.Duration(s.AgeMillis) * time.Millisecond), nil
}

// checkHeader checks what names a sample and bounds its size.
func checkHeader(s Sample) error {
	switch {
	case s.Kind != store.KindDeployment && s.Kind != store.KindStatefulSet:
		return fmt.Errorf("kind %q is not a workload kind", s.Kind)
	case s.Namespace == "" || s.Workload == "" || s.Trigger == "":
		return errors.New("namespace, workload and trigger are required")
	case s.AgeMillis < 0 || s.AgeMillis > maxAge.Milliseconds():
		return fmt.Errorf("age %dms is not within 0 to %s", s.AgeMillis, maxAge)
	case len(s.Error) > maxText || len(s.Warnings) > maxWarnings:
		return errors.New("the error or the warnings are too long")
	}
	for _, w := range s.Warnings {
		if len(w.Reason) > 128 || len(w.Message) > maxText {
			return errors.New("a warning is too long")
		}
	}
	return nil
}

// decodeResult is the poll's result a checked sample carries: its error, or its value and
// counters, which must be finite numbers of at least 0.
func decodeResult(s Sample) (sources.Sample, error) {
	out := sources.Sample{Active: s.Active}
	for _, w := range s.Warnings {
		out.Warnings = append(out.Warnings, sources.Warning(w))
	}
	if s.Error != "" {
		out.Err = errors.New(s.Error)
		return out, nil
	}
	if !wellFormed(s.Value) {
		return sources.Sample{}, fmt.Errorf("value %v is not a finite number of at least 0", s.Value)
	}
	out.Value = s.Value
	if c := s.Counters; c != nil {
		if !wellFormed(c.Backlog) || !wellFormed(c.Produced) || !wellFormed(c.Consumed) || c.Consumers < 0 {
			return sources.Sample{}, errors.New("counters must be finite numbers of at least 0")
		}
		out.Counters = &sources.Counters{Backlog: c.Backlog, Produced: c.Produced, Consumed: c.Consumed, Consumers: c.Consumers}
	}
	return out, nil
}

func wellFormed(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) && v >= 0 }
