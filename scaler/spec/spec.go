// Package spec reads a workload's qscale.io annotations into a Spec.
//
// ParseSpec parses and validates the annotations, reporting every Problem at once in an
// *Error; Spec.Compile parses each TriggerSpec's parameters through the sources registry
// into ready-to-poll triggers, with the parameters its AuthenticationRef supplies from the
// Secrets a SecretLookup returns (a Secret whose keys are the parameters, and KEDA's
// SecretTargetRef mappings from one key to one parameter); Load does both.
// Spec.Policy is what the replica decision (package policy) reads of a Spec. CheckManifests
// checks the workloads of manifests offline, as `qscale check` does, into a Report of
// Findings; ReadManifests splits manifests into their objects for other readers (package
// keda).
package spec

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/qscale/qscale/scaler/policy"
	"github.com/qscale/qscale/sources"
)

// The annotations that opt a workload in and configure it.
const (
	AnnotationTriggers         = "qscale.io/triggers"
	AnnotationMinReplicas      = "qscale.io/min-replicas"
	AnnotationMaxReplicas      = "qscale.io/max-replicas"
	AnnotationPollingInterval  = "qscale.io/polling-interval"
	AnnotationCooldownPeriod   = "qscale.io/cooldown-period"
	AnnotationFallbackReplicas = "qscale.io/fallback-replicas"
	AnnotationFallbackFailures = "qscale.io/fallback-failures"
	AnnotationPaused           = "qscale.io/paused"
	AnnotationPausedReplicas   = "qscale.io/paused-replicas"
	AnnotationHPABehavior      = "qscale.io/hpa-behavior"

	// AnnotationStatus is written by qscale, never read as configuration: the workload's
	// state (package status). It is not one of the annotations a user sets, so ParseSpec
	// neither reads it nor calls it unknown, and it is no part of ConfigDigest.
	AnnotationStatus = "qscale.io/status"

	// AnnotationPrefix starts every qscale.io annotation; one that is not known is an error.
	AnnotationPrefix = "qscale.io/"
)

// Defaults of the annotations.
const (
	DefaultMinReplicas      = 1
	DefaultMaxReplicas      = 100
	DefaultPollingInterval  = 10 * time.Second
	DefaultCooldownPeriod   = 5 * time.Minute
	DefaultFallbackFailures = 3

	minPollingInterval = time.Second
)

var knownAnnotations = map[string]bool{
	AnnotationTriggers: true, AnnotationMinReplicas: true, AnnotationMaxReplicas: true,
	AnnotationPollingInterval: true, AnnotationCooldownPeriod: true, AnnotationFallbackReplicas: true,
	AnnotationFallbackFailures: true, AnnotationPaused: true, AnnotationPausedReplicas: true,
	AnnotationHPABehavior: true,
}

// Spec is a workload's scaling configuration, as its annotations declare it.
type Spec struct {
	Triggers         []TriggerSpec
	MinReplicas      int32
	MaxReplicas      int32
	PollingInterval  time.Duration
	CooldownPeriod   time.Duration
	FallbackReplicas int32 // 0: fallback is off
	FallbackFailures int32
	Paused           bool
	PausedReplicas   *int32
	Behavior         *autoscalingv2.HorizontalPodAutoscalerBehavior
}

// Policy is what the replica decision reads of the spec. The HPA's tolerances are
// policy.DefaultTolerance unless hpa-behavior sets them.
func (s *Spec) Policy() policy.Spec {
	p := policy.Spec{
		MinReplicas: s.MinReplicas, MaxReplicas: s.MaxReplicas,
		PollingInterval: s.PollingInterval, CooldownPeriod: s.CooldownPeriod,
		FallbackReplicas: s.FallbackReplicas, FallbackFailures: s.FallbackFailures,
		Paused: s.Paused, PausedReplicas: s.PausedReplicas,
		ScaleUpTolerance: policy.DefaultTolerance, ScaleDownTolerance: policy.DefaultTolerance,
	}
	if b := s.Behavior; b != nil {
		if b.ScaleUp != nil && b.ScaleUp.Tolerance != nil {
			p.ScaleUpTolerance = b.ScaleUp.Tolerance.AsApproximateFloat64()
		}
		if b.ScaleDown != nil && b.ScaleDown.Tolerance != nil {
			p.ScaleDownTolerance = b.ScaleDown.Tolerance.AsApproximateFloat64()
		}
	}
	return p
}

// TriggerSpec is one entry of qscale.io/triggers, in KEDA's trigger schema.
type TriggerSpec struct {
	Type              string             `json:"type"`
	Name              string             `json:"name,omitempty"`
	Metadata          Metadata           `json:"metadata,omitempty"`
	AuthenticationRef *AuthenticationRef `json:"authenticationRef,omitempty"`
}

// AuthenticationRef names where a trigger's secret parameters come from: a Secret in the
// workload's namespace whose keys are the parameters (Name), KEDA's secretTargetRef mappings
// from parameters to keys of Secrets in that namespace (SecretTargetRef), or both, the
// mappings winning. A TriggerAuthentication converted from KEDA keeps its Secrets unchanged
// through SecretTargetRef.
type AuthenticationRef struct {
	Name            string            `json:"name,omitempty"`
	SecretTargetRef []SecretTargetRef `json:"secretTargetRef,omitempty"`
}

// SecretTargetRef supplies one trigger parameter from one key of a Secret, as in KEDA's
// TriggerAuthentication.
type SecretTargetRef struct {
	Parameter string `json:"parameter"` // the trigger parameter
	Name      string `json:"name"`      // a Secret in the workload's namespace
	Key       string `json:"key"`       // the key of that Secret
}

// SecretNames returns the Secrets the reference reads, each once, Name first: the Secrets
// qscale must read, and only those.
func (a *AuthenticationRef) SecretNames() []string {
	if a == nil {
		return nil
	}
	var names []string
	if a.Name != "" {
		names = append(names, a.Name)
	}
	for _, m := range a.SecretTargetRef {
		if m.Name != "" && !slices.Contains(names, m.Name) {
			names = append(names, m.Name)
		}
	}
	return names
}

// Metadata holds a trigger's parameters. Values are strings, as in KEDA; an unquoted YAML
// number or boolean is taken as its text, since `lagThreshold: 50` means what it says.
type Metadata map[string]string

// UnmarshalJSON accepts string, number and boolean values.
func (m *Metadata) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return errors.New("must be a map of parameter names to values")
	}
	out := make(Metadata, len(raw))
	for k, v := range raw {
		var s string
		switch {
		case json.Unmarshal(v, &s) == nil:
			out[k] = s
		case bytes.Equal(v, []byte("true")), bytes.Equal(v, []byte("false")):
			out[k] = string(v)
		case len(v) > 0 && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9')):
			out[k] = string(v)
		default:
			return fmt.Errorf("%s: must be a string, number or boolean", k)
		}
	}
	*m = out
	return nil
}

// IsConfigAnnotation reports whether key is one of the qscale.io annotations that configure
// a workload: every qscale.io annotation but the status qscale writes.
func IsConfigAnnotation(key string) bool {
	return strings.HasPrefix(key, AnnotationPrefix) && key != AnnotationStatus
}

// ConfigDigest digests a workload's configuration annotations, so that a status can say which
// configuration it describes. Other annotations, qscale's status among them, do not count.
func ConfigDigest(annotations map[string]string) string {
	keys := make([]string, 0, len(annotations))
	for k := range annotations {
		if IsConfigAnnotation(k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%q\n", k, annotations[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// HasTriggers reports whether annotations opt a workload in.
func HasTriggers(annotations map[string]string) bool {
	_, ok := annotations[AnnotationTriggers]
	return ok
}

// ParseSpec reads the qscale.io annotations. Every problem is reported at once, in an
// *Error, with the Spec as far as it could be read (bad values replaced by defaults);
// trigger parameters are checked by Compile, which needs the Secrets (Load does both).
func ParseSpec(annotations map[string]string) (*Spec, error) {
	p := &specParser{annotations: annotations}
	s := &Spec{
		Triggers:         p.triggers(),
		MinReplicas:      p.int32(AnnotationMinReplicas, DefaultMinReplicas, 0),
		MaxReplicas:      p.int32(AnnotationMaxReplicas, DefaultMaxReplicas, 1),
		PollingInterval:  p.duration(AnnotationPollingInterval, DefaultPollingInterval, minPollingInterval),
		CooldownPeriod:   p.duration(AnnotationCooldownPeriod, DefaultCooldownPeriod, 0),
		FallbackReplicas: p.int32(AnnotationFallbackReplicas, 0, 1),
		FallbackFailures: p.int32(AnnotationFallbackFailures, DefaultFallbackFailures, 1),
		Paused:           p.bool(AnnotationPaused),
		Behavior:         p.behavior(),
	}
	if _, ok := annotations[AnnotationPausedReplicas]; ok {
		n := p.int32(AnnotationPausedReplicas, 0, 0)
		s.PausedReplicas = &n
	}
	if s.MaxReplicas < s.MinReplicas {
		p.add(AnnotationMaxReplicas, "", fmt.Sprintf("must be at least min-replicas (%d), got %d", s.MinReplicas, s.MaxReplicas))
	}
	for key := range annotations {
		if IsConfigAnnotation(key) && !knownAnnotations[key] {
			p.add(key, "", "unknown annotation"+sources.Suggest(key, knownAnnotations))
		}
	}
	if len(p.problems) > 0 {
		SortProblems(p.problems)
		return s, &Error{Problems: p.problems}
	}
	return s, nil
}

// Load parses a workload's annotations and compiles its triggers, reporting every problem of
// both steps together in one *Error. Other errors come from reading Secrets.
func Load(annotations map[string]string, reg sources.Registry, secrets SecretLookup) (*Spec, []sources.Trigger, error) {
	spec, err := ParseSpec(annotations)
	var parsed *Error
	if err != nil && !errors.As(err, &parsed) {
		return nil, nil, err
	}
	triggers, err := spec.Compile(reg, secrets)
	var compiled *Error
	if err != nil && !errors.As(err, &compiled) {
		return nil, nil, err
	}
	if parsed == nil && compiled == nil {
		return spec, triggers, nil
	}
	var problems []Problem
	if parsed != nil {
		problems = append(problems, parsed.Problems...)
	}
	if compiled != nil {
		problems = append(problems, compiled.Problems...)
	}
	SortProblems(problems)
	return nil, nil, &Error{Problems: problems}
}
