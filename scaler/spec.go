// Package scaler turns annotated workloads into replica decisions and applies them.
//
// ParseSpec reads a workload's qscale.io annotations into a Spec; Spec.Compile parses its
// triggers through the sources registry, and Spec.Policy is what the replica decision
// (package policy) reads of it. The Store keeps the latest Sample of every
// trigger and the latest Decision of every target; the Poller reads sources into the Store,
// one batched poll per connection; the Reconciler keeps each workload's HPA, scale
// subresource and Events in line with its Decision.
package scaler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

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

	annotationPrefix = "qscale.io/"
)

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

// TriggerSpec is one entry of qscale.io/triggers, in KEDA's trigger schema.
type TriggerSpec struct {
	Type              string             `json:"type"`
	Name              string             `json:"name,omitempty"`
	Metadata          Metadata           `json:"metadata,omitempty"`
	AuthenticationRef *AuthenticationRef `json:"authenticationRef,omitempty"`
}

// AuthenticationRef names a Secret in the workload's namespace.
type AuthenticationRef struct {
	Name string `json:"name"`
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

// Problem is one thing wrong with a workload's annotations.
type Problem struct {
	Annotation string
	Field      string // within the annotation; "" for the annotation as a whole
	Message    string
}

func (p Problem) String() string {
	if p.Field == "" {
		return p.Annotation + ": " + p.Message
	}
	return p.Annotation + ": " + p.Field + ": " + p.Message
}

// SpecError reports every problem of a workload's annotations. It is a user error: only an
// edit of the annotations (or of a Secret they name) can fix it.
type SpecError struct{ Problems []Problem }

func (e *SpecError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return strings.Join(parts, "; ")
}

// HasTriggers reports whether annotations opt a workload in.
func HasTriggers(annotations map[string]string) bool {
	_, ok := annotations[AnnotationTriggers]
	return ok
}

// ParseSpec reads the qscale.io annotations. Every problem is reported at once, in a
// *SpecError, with the Spec as far as it could be read (bad values replaced by defaults);
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
		if strings.HasPrefix(key, annotationPrefix) && !knownAnnotations[key] {
			p.add(key, "", "unknown annotation"+sources.Suggest(key, knownAnnotations))
		}
	}
	if len(p.problems) > 0 {
		sortProblems(p.problems)
		return s, &SpecError{Problems: p.problems}
	}
	return s, nil
}

// Load parses a workload's annotations and compiles its triggers, reporting every problem of
// both steps together in one *SpecError. Other errors come from reading Secrets.
func Load(annotations map[string]string, reg sources.Registry, secrets SecretLookup) (*Spec, []sources.Trigger, error) {
	spec, err := ParseSpec(annotations)
	var parsed *SpecError
	if err != nil && !errors.As(err, &parsed) {
		return nil, nil, err
	}
	triggers, err := spec.Compile(reg, secrets)
	var compiled *SpecError
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
	sortProblems(problems)
	return nil, nil, &SpecError{Problems: problems}
}

// sortProblems orders problems by annotation, keeping the order within one annotation.
func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Annotation < ps[j].Annotation })
}

type specParser struct {
	annotations map[string]string
	problems    []Problem
}

func (p *specParser) add(annotation, field, msg string) {
	p.problems = append(p.problems, Problem{Annotation: annotation, Field: field, Message: msg})
}

func (p *specParser) lookup(key string) (string, bool) {
	v, ok := p.annotations[key]
	return strings.TrimSpace(v), ok
}

func (p *specParser) int32(key string, def, least int32) int32 {
	v, ok := p.lookup(key)
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || int32(n) < least {
		p.add(key, "", fmt.Sprintf("must be a whole number of at least %d, got %q", least, v))
		return def
	}
	return int32(n)
}

func (p *specParser) duration(key string, def, least time.Duration) time.Duration {
	v, ok := p.lookup(key)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < least {
		p.add(key, "", fmt.Sprintf("must be a duration of at least %s such as 30s or 5m, got %q", least, v))
		return def
	}
	return d
}

func (p *specParser) bool(key string) bool {
	v, ok := p.lookup(key)
	if !ok {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.add(key, "", fmt.Sprintf("must be true or false, got %q", v))
	}
	return b
}

func (p *specParser) behavior() *autoscalingv2.HorizontalPodAutoscalerBehavior {
	v, ok := p.lookup(AnnotationHPABehavior)
	if !ok {
		return nil
	}
	var b autoscalingv2.HorizontalPodAutoscalerBehavior
	if err := yaml.UnmarshalStrict([]byte(v), &b); err != nil {
		p.add(AnnotationHPABehavior, "", "not a HorizontalPodAutoscalerBehavior: "+err.Error())
		return nil
	}
	return &b
}

func (p *specParser) triggers() []TriggerSpec {
	v, ok := p.lookup(AnnotationTriggers)
	if !ok {
		p.add(AnnotationTriggers, "", "is required")
		return nil
	}
	var ts []TriggerSpec
	if err := yaml.UnmarshalStrict([]byte(v), &ts); err != nil {
		p.add(AnnotationTriggers, "", "must be a YAML or JSON list of triggers: "+err.Error())
		return nil
	}
	if len(ts) == 0 {
		p.add(AnnotationTriggers, "", "lists no trigger")
	}
	seen := map[string]int{}
	for i := range ts {
		t := &ts[i]
		field := func(f string) string { return fmt.Sprintf("[%d].%s", i, f) }
		if t.Type == "" {
			p.add(AnnotationTriggers, field("type"), "is required")
		}
		if t.Name == "" {
			t.Name = fmt.Sprintf("%s-%d", t.Type, i)
		} else if errs := validation.IsDNS1123Label(t.Name); len(errs) > 0 {
			p.add(AnnotationTriggers, field("name"), fmt.Sprintf("%q is not a DNS label: %s", t.Name, strings.Join(errs, "; ")))
		}
		if j, dup := seen[t.Name]; dup {
			p.add(AnnotationTriggers, field("name"), fmt.Sprintf("%q is also the name of trigger %d", t.Name, j))
		}
		seen[t.Name] = i
		if t.AuthenticationRef != nil && t.AuthenticationRef.Name == "" {
			p.add(AnnotationTriggers, field("authenticationRef.name"), "is required")
		}
	}
	return ts
}

// SecretLookup returns the data of a Secret in the workload's namespace.
type SecretLookup func(name string) (map[string]string, error)

// ErrSecretNotFound is returned by a SecretLookup for a Secret that does not exist.
var ErrSecretNotFound = errors.New("not found")

// ErrSecretUnavailable is returned by a SecretLookup that cannot see Secrets at all (an
// offline check): parameters the Secret could supply are then not reported missing.
var ErrSecretUnavailable = errors.New("unavailable")

// Compile parses every trigger's parameters through reg, with the data of the Secret its
// authenticationRef names. Every problem of every trigger is reported at once, in a *SpecError.
func (s *Spec) Compile(reg sources.Registry, secrets SecretLookup) ([]sources.Trigger, error) {
	var problems []Problem
	out := make([]sources.Trigger, 0, len(s.Triggers))
	for i, t := range s.Triggers {
		prefix := fmt.Sprintf("[%d] (%s)", i, t.Name)
		var data map[string]string
		lenient := false
		if t.AuthenticationRef != nil {
			var err error
			data, err = secrets(t.AuthenticationRef.Name)
			switch {
			case errors.Is(err, ErrSecretUnavailable):
				lenient = true
			case errors.Is(err, ErrSecretNotFound):
				problems = append(problems, Problem{AnnotationTriggers, prefix + ".authenticationRef",
					fmt.Sprintf("Secret %q does not exist in the workload's namespace", t.AuthenticationRef.Name)})
				continue
			case err != nil:
				return nil, fmt.Errorf("reading Secret %q: %w", t.AuthenticationRef.Name, err)
			}
		}
		tr, err := reg.Parse(sources.Params{Type: t.Type, Name: t.Name, Metadata: t.Metadata, Secret: data})
		var ce *sources.ConfigError
		switch {
		case errors.As(err, &ce):
			for _, fp := range ce.Problems {
				if lenient && fp.Missing {
					continue
				}
				field := prefix + ".metadata." + fp.Param
				if fp.Param == "type" {
					field = prefix + ".type"
				}
				problems = append(problems, Problem{AnnotationTriggers, field, fp.Problem})
			}
		case err != nil:
			return nil, err
		default:
			out = append(out, tr)
		}
	}
	if len(problems) > 0 {
		return nil, &SpecError{Problems: problems}
	}
	return out, nil
}
