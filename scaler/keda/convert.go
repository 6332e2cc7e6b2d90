// Package keda converts KEDA's ScaledObjects into qscale.io annotations, as
// `qscale import-keda` does.
//
// Convert reads the objects of manifests (spec.ReadManifests) and returns a Result with one
// Conversion per ScaledObject or ScaledJob: the annotations that carry its settings and
// triggers over, the Object to apply (the workload itself when the input holds it, else a
// patch of its annotations), and every field that could not be carried over, Unmapped, with
// why. The annotations are checked with spec.Load, the rules of the controller and of
// `qscale check`, before anything is offered to apply.
package keda

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/qscale/qscale/scaler/spec"
	"github.com/qscale/qscale/sources"
)

// The Status of a Conversion.
const (
	StatusConverted = "converted" // every field carried over, and the annotations are valid
	StatusPartial   = "partial"   // an Object to apply, without some fields (see Unmapped)
	StatusFailed    = "failed"    // no Object: nothing to apply
)

// KEDA's defaults, which differ from qscale's and so are written out.
const (
	kedaMinReplicas     = 0
	kedaMaxReplicas     = 100
	kedaPollingInterval = 30 * time.Second
	kedaCooldownPeriod  = 300 * time.Second
)

// Target is the workload a ScaledObject scales.
type Target struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// Unmapped is a field of the KEDA objects that has no qscale equivalent.
type Unmapped struct {
	Field  string `json:"field"` // in the ScaledObject, or in a TriggerAuthentication it names
	Reason string `json:"reason"`
}

func (u Unmapped) String() string { return u.Field + ": " + u.Reason }

// Conversion is what became of one ScaledObject (or ScaledJob).
type Conversion struct {
	File      string  `json:"file"`
	Document  int     `json:"document"`
	Kind      string  `json:"kind"`
	Namespace string  `json:"namespace,omitempty"`
	Name      string  `json:"name"`
	Target    *Target `json:"target,omitempty"`
	Status    string  `json:"status"`
	// Annotations are the qscale.io annotations for Target, as converted: those Invalid names
	// the problems of when they do not pass qscale's checks.
	Annotations map[string]string `json:"annotations,omitempty"`
	Unmapped    []Unmapped        `json:"unmapped,omitempty"`
	// Invalid are the problems qscale finds in the converted annotations; none is applied then.
	Invalid []spec.Problem `json:"invalid,omitempty"`
	// NotChecked names the Secrets that triggers read and the input does not hold: the
	// parameters they supply were not checked.
	NotChecked []string `json:"notChecked,omitempty"`
	// WorkloadFromInput reports that Object is the workload of the input, annotated, rather
	// than a patch holding only the annotations.
	WorkloadFromInput bool `json:"workloadFromInput,omitempty"`
	// Object is what to apply: nil when Status is failed.
	Object map[string]any `json:"object,omitempty"`
}

// Result is the outcome of converting manifests.
type Result struct {
	Conversions []Conversion   `json:"conversions"`
	Unreadable  []spec.Finding `json:"unreadable,omitempty"` // documents that could not be read
}

// Complete reports whether everything converted: every Conversion whole and every document read.
func (r *Result) Complete() bool {
	if len(r.Unreadable) > 0 {
		return false
	}
	for _, c := range r.Conversions {
		if c.Status != StatusConverted {
			return false
		}
	}
	return true
}

// Convert converts every ScaledObject and ScaledJob of the manifests, with the
// TriggerAuthentications, ClusterTriggerAuthentications, workloads and Secrets they hold.
// reg holds the trigger types qscale has; it is also what the annotations are checked with.
func Convert(manifests []spec.Manifest, reg sources.Registry) *Result {
	in := index(manifests)
	r := &Result{}
	claimed := map[Target]string{} // the ScaledObject that converted first for each workload
	for _, m := range manifests {
		if m.Group() != kedaGroup || (m.Kind != "ScaledObject" && m.Kind != "ScaledJob") {
			continue
		}
		c := Conversion{File: m.File, Document: m.Document, Kind: m.Kind, Namespace: m.Namespace, Name: m.Name, Status: StatusFailed}
		if m.Kind == "ScaledJob" {
			c.Unmapped = []Unmapped{{Field: "kind", Reason: "qscale scales Deployments and StatefulSets, not Jobs: a ScaledJob has no qscale equivalent"}}
			r.Conversions = append(r.Conversions, c)
			continue
		}
		cv := &converter{in: in, reg: reg, m: m, c: &c}
		cv.convert(claimed)
		r.Conversions = append(r.Conversions, c)
	}
	return r
}

// converter converts one ScaledObject.
type converter struct {
	in  *inputs
	reg sources.Registry
	m   spec.Manifest
	c   *Conversion
}

func (cv *converter) unmapped(field, format string, args ...any) {
	cv.c.Unmapped = append(cv.c.Unmapped, Unmapped{Field: field, Reason: fmt.Sprintf(format, args...)})
}

func (cv *converter) convert(claimed map[Target]string) {
	so, err := decodeScaledObject(cv.m.JSON)
	if err != nil {
		cv.unmapped("spec", "not a ScaledObject: %v", err)
		return
	}
	target, ok := cv.target(so.Spec.ScaleTargetRef)
	if !ok {
		return
	}
	cv.c.Target = &target
	if other, dup := claimed[target]; dup {
		cv.unmapped("spec.scaleTargetRef", "ScaledObject %q already scales %s %q: KEDA refuses two ScaledObjects for one workload, and so does qscale's one set of annotations", other, target.Kind, target.Name)
		return
	}
	ann := map[string]string{}
	cv.settings(so, ann)
	cv.pause(so.Metadata.Annotations, ann)
	triggers := cv.triggers(so.Spec.Triggers)
	for _, key := range slices.Sorted(maps.Keys(so.fields)) {
		if !knownSpecFields[key] {
			cv.unmapped("spec."+key, "not a ScaledObject field this version of qscale import-keda knows")
		}
	}
	if len(triggers) == 0 {
		cv.unmapped("spec.triggers", "no trigger could be converted, so qscale would not scale the workload: nothing to apply")
		return
	}
	text, err := triggersAnnotation(triggers)
	if err != nil {
		cv.unmapped("spec.triggers", "%v", err)
		return
	}
	ann[spec.AnnotationTriggers] = text
	cv.c.Annotations = ann
	cv.validate(target, ann)
	if len(cv.c.Invalid) > 0 {
		return
	}
	claimed[target] = cv.m.Name
	cv.c.Object, cv.c.WorkloadFromInput = cv.in.object(target, cv.m.Namespace, ann)
	cv.c.Status = StatusConverted
	if len(cv.c.Unmapped) > 0 {
		cv.c.Status = StatusPartial
	}
}

// target reads scaleTargetRef: a Deployment or StatefulSet of apps/v1 in the ScaledObject's
// namespace, Deployment when kind is not given, as in KEDA.
func (cv *converter) target(ref scaleTargetRef) (Target, bool) {
	t := Target{Kind: ref.Kind, Namespace: cv.m.Namespace, Name: ref.Name}
	if t.Kind == "" {
		t.Kind = "Deployment"
	}
	switch {
	case ref.Name == "":
		cv.unmapped("spec.scaleTargetRef.name", "is required: the workload the ScaledObject scales")
		return t, false
	case t.Kind != "Deployment" && t.Kind != "StatefulSet":
		cv.unmapped("spec.scaleTargetRef.kind", "qscale scales Deployments and StatefulSets, not a %s", t.Kind)
		return t, false
	case ref.APIVersion != "" && ref.APIVersion != "apps/v1":
		cv.unmapped("spec.scaleTargetRef.apiVersion", "qscale scales apps/v1 Deployments and StatefulSets, not %s", ref.APIVersion)
		return t, false
	}
	return t, true
}

// settings carries the ScaledObject's replica bounds, intervals, fallback and HPA behavior
// over, writing KEDA's defaults where they differ from qscale's.
func (cv *converter) settings(so *scaledObject, ann map[string]string) {
	s := so.Spec
	minReplicas := orDefault(s.MinReplicaCount, kedaMinReplicas)
	if s.IdleReplicaCount != nil {
		cv.idle(*s.IdleReplicaCount, minReplicas)
		minReplicas = 0
	}
	ann[spec.AnnotationMinReplicas] = strconv.Itoa(int(minReplicas))
	ann[spec.AnnotationMaxReplicas] = strconv.Itoa(int(orDefault(s.MaxReplicaCount, kedaMaxReplicas)))
	ann[spec.AnnotationPollingInterval] = seconds(s.PollingInterval, kedaPollingInterval)
	ann[spec.AnnotationCooldownPeriod] = seconds(s.CooldownPeriod, kedaCooldownPeriod)
	if s.InitialCooldownPeriod != nil && *s.InitialCooldownPeriod != 0 {
		cv.unmapped("spec.initialCooldownPeriod", "qscale has no cooldown after the workload is created: it may scale to zero once the cooldown period passes")
	}
	if f := s.Fallback; f != nil {
		ann[spec.AnnotationFallbackReplicas] = strconv.Itoa(int(f.Replicas))
		ann[spec.AnnotationFallbackFailures] = strconv.Itoa(int(f.FailureThreshold))
		switch f.Behavior {
		case "", "static", "currentReplicasIfHigher":
		default:
			cv.unmapped("spec.fallback.behavior", "qscale's fallback holds the larger of fallback.replicas and the current replicas (KEDA's currentReplicasIfHigher), never %s", f.Behavior)
		}
	}
	if a := s.Advanced; a != nil {
		cv.advanced(a, ann)
	}
}

// idle maps idleReplicaCount, which KEDA allows only as 0: replicas go to 0 when every
// trigger is inactive, as min-replicas 0 does in qscale, whose floor while active is then 1.
func (cv *converter) idle(idle, minReplicas int32) {
	switch {
	case idle != 0:
		cv.unmapped("spec.idleReplicaCount", "qscale idles a workload at 0 replicas only, not %d", idle)
	case minReplicas > 1:
		cv.unmapped("spec.idleReplicaCount", "idleReplicaCount 0 is min-replicas 0 in qscale, whose floor while a trigger is active is 1, not minReplicaCount %d", minReplicas)
	}
}

func (cv *converter) advanced(a *advanced, ann map[string]string) {
	if a.RestoreToOriginalReplicaCount {
		cv.unmapped("spec.advanced.restoreToOriginalReplicaCount", "qscale leaves the replicas as they are when its annotations are removed")
	}
	if len(a.ScalingModifiers) > 0 && string(a.ScalingModifiers) != "null" && string(a.ScalingModifiers) != "{}" {
		cv.unmapped("spec.advanced.scalingModifiers", "qscale scales on each trigger alone (the HPA takes the largest), with no formula combining them")
	}
	h := a.HorizontalPodAutoscalerConfig
	if h == nil {
		return
	}
	if h.Name != "" {
		cv.unmapped("spec.advanced.horizontalPodAutoscalerConfig.name", "qscale names the HPA it owns qscale-<workload>")
	}
	if len(h.Behavior) > 0 && string(h.Behavior) != "null" {
		text, err := yamlText(h.Behavior)
		if err != nil {
			cv.unmapped("spec.advanced.horizontalPodAutoscalerConfig.behavior", "%v", err)
			return
		}
		ann[spec.AnnotationHPABehavior] = text
	}
}

// KEDA's annotations that pause a ScaledObject, and their qscale equivalents.
var pauseAnnotations = map[string]string{
	"autoscaling.keda.sh/paused":          spec.AnnotationPaused,
	"autoscaling.keda.sh/paused-replicas": spec.AnnotationPausedReplicas,
}

func (cv *converter) pause(annotations map[string]string, ann map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(annotations)) {
		if to, ok := pauseAnnotations[k]; ok {
			ann[to] = annotations[k]
			continue
		}
		if isKEDAAnnotation(k) {
			cv.unmapped("metadata.annotations."+k, "a KEDA annotation with no qscale equivalent")
		}
	}
}

func orDefault(v *int32, def int32) int32 {
	if v == nil {
		return def
	}
	return *v
}

// seconds writes KEDA's whole seconds as a Go duration.
func seconds(v *int32, def time.Duration) string {
	if v == nil {
		return def.String()
	}
	return (time.Duration(*v) * time.Second).String()
}

// yamlText writes JSON as YAML, for an annotation whose value is YAML.
func yamlText(js json.RawMessage) (string, error) {
	b, err := yaml.JSONToYAML(js)
	return string(b), err
}

// WriteObjects writes the Object of every Conversion that has one as multi-document YAML,
// in the order of the input: what to apply.
func (r *Result) WriteObjects(w io.Writer) error {
	first := true
	for _, c := range r.Conversions {
		if c.Object == nil {
			continue
		}
		b, err := yaml.Marshal(c.Object)
		if err != nil {
			return fmt.Errorf("%s %s/%s: %w", c.Kind, c.Namespace, c.Name, err)
		}
		if !first {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return err
			}
		}
		first = false
		if _, err := fmt.Fprintf(w, "# from %s %s\n%s", c.Kind, c.describe(), b); err != nil {
			return err
		}
	}
	return nil
}

// describe names the KEDA object as namespace/name, or name when it names no namespace.
func (c Conversion) describe() string {
	if c.Namespace == "" {
		return c.Name
	}
	return c.Namespace + "/" + c.Name
}
