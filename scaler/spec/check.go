package spec

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/qscale/qscale/sources"
)

// Input is one manifest to check: multi-document YAML or JSON, Lists expanded. Name is how
// findings name it: its path, say.
type Input struct {
	Name string
	Data io.Reader
}

// The Status of a Finding.
const (
	StatusOK      = "ok"      // a workload whose annotations are valid
	StatusWarning = "warning" // something qscale ignores that the author may expect it to read
	StatusError   = "error"   // invalid annotations, or a document that cannot be read
)

// Finding is what checking found about one object of the input, or about a document that
// could not be read (Kind is then empty).
type Finding struct {
	File      string    `json:"file"`
	Document  int       `json:"document"` // 1-based, in File
	Kind      string    `json:"kind,omitempty"`
	Namespace string    `json:"namespace,omitempty"`
	Name      string    `json:"name,omitempty"`
	Status    string    `json:"status"`
	Errors    []Problem `json:"errors,omitempty"`
	Warnings  []string  `json:"warnings,omitempty"`
	// NotChecked names what the check could not see: a Secret that authenticationRef names
	// (by name or in secretTargetRef) and the input does not hold, whose parameters are then
	// not reported missing.
	NotChecked []string `json:"notChecked,omitempty"`
}

// Object names the object as `Kind namespace/name`, or the document that could not be read.
func (f Finding) Object() string {
	if f.Kind == "" {
		return fmt.Sprintf("document %d", f.Document)
	}
	return fmt.Sprintf("%s %s/%s", f.Kind, f.Namespace, f.Name)
}

// Report is the outcome of checking manifests.
type Report struct {
	// Findings are the workloads checked, the objects warned about and the documents that
	// could not be read, in the order of the input.
	Findings   []Finding      `json:"findings"`
	Checked    int            `json:"checked"`    // workloads with qscale.io/triggers
	WithErrors int            `json:"withErrors"` // findings with errors
	Warnings   int            `json:"warnings"`   // findings with warnings
	Secrets    int            `json:"secrets"`    // Secrets read for authenticationRef
	Skipped    map[string]int `json:"skipped"`    // objects neither checked nor warned about, by kind
}

// CheckManifests validates, offline, the qscale.io annotations of every apps/v1 Deployment
// and StatefulSet of the inputs that carries qscale.io/triggers, with the Secrets of all the
// inputs for authenticationRef. A Secret that is not in the inputs is reported as not
// checked, and the parameters it could supply are not reported missing. A KEDA object, or
// another kind with qscale.io annotations, is a warning that says what to do instead; every
// other object is skipped and counted. Only an input that cannot be read is an error.
func CheckManifests(inputs []Input, reg sources.Registry) (*Report, error) {
	r := &Report{Skipped: map[string]int{}}
	var objects []*object
	for _, in := range inputs {
		found, unreadable, err := readObjects(in)
		if err != nil {
			return nil, err
		}
		objects = append(objects, found...)
		r.Findings = append(r.Findings, unreadable...)
	}
	c := &checker{reg: reg, report: r, secrets: map[string]map[string]string{}}
	for _, o := range objects {
		if o.Kind == "Secret" && o.group() == "" {
			c.secret(o)
		}
	}
	for _, o := range objects {
		c.object(o)
	}
	order := make(map[string]int, len(inputs))
	for i, in := range inputs {
		order[in.Name] = i
	}
	sort.SliceStable(r.Findings, func(i, j int) bool {
		a, b := r.Findings[i], r.Findings[j]
		if order[a.File] != order[b.File] {
			return order[a.File] < order[b.File]
		}
		return a.Document < b.Document
	})
	for _, f := range r.Findings {
		switch f.Status {
		case StatusError:
			r.WithErrors++
		case StatusWarning:
			r.Warnings++
		}
	}
	return r, nil
}

const kedaGroup = "keda.sh"

type checker struct {
	reg     sources.Registry
	report  *Report
	secrets map[string]map[string]string // by namespace/name
}

func (c *checker) secret(o *object) {
	data, err := o.secretData()
	if err != nil {
		c.add(o, nil, []string{err.Error() + ": the Secret is not used to check the triggers that name it"})
		return
	}
	c.secrets[o.namespace()+"/"+o.Metadata.Name] = data
	c.report.Secrets++
}

func (c *checker) object(o *object) {
	switch {
	case o.Kind == "Secret" && o.group() == "":
	case (o.Kind == "Deployment" || o.Kind == "StatefulSet") && o.group() == "apps":
		c.workload(o)
	case o.group() == kedaGroup && kedaAdvice[o.Kind] != "":
		c.add(o, nil, []string{c.kedaWarning(o)})
	case hasQscaleAnnotation(o.Metadata.Annotations):
		c.add(o, nil, []string{fmt.Sprintf("qscale reads qscale.io annotations only on apps/v1 Deployments and StatefulSets; on %s they have no effect: put them on the Deployment or StatefulSet to scale", article(o.Kind))})
	default:
		c.skip(o.Kind)
	}
}

func (c *checker) skip(kind string) {
	if kind == "" {
		kind = "(no kind)"
	}
	c.report.Skipped[kind]++
}

// add records a finding about o.
func (c *checker) add(o *object, problems []Problem, warnings []string) *Finding {
	f := Finding{File: o.file, Document: o.document, Kind: o.Kind, Namespace: o.namespace(), Name: o.Metadata.Name,
		Status: StatusOK, Errors: problems, Warnings: warnings}
	switch {
	case len(problems) > 0:
		f.Status = StatusError
	case len(warnings) > 0:
		f.Status = StatusWarning
	}
	c.report.Findings = append(c.report.Findings, f)
	return &c.report.Findings[len(c.report.Findings)-1]
}

func (c *checker) workload(o *object) {
	var warnings []string
	if hasQscaleAnnotation(o.podTemplateAnnotations()) {
		warnings = append(warnings, fmt.Sprintf("qscale.io annotations in the pod template (spec.template.metadata.annotations) have no effect: move them to the %s's own metadata.annotations", o.Kind))
	}
	annotations, notStrings := o.annotations()
	if !HasTriggers(annotations) {
		if hasQscaleAnnotation(o.Metadata.Annotations) {
			warnings = append(warnings, "has qscale.io annotations but no qscale.io/triggers, so qscale does not scale it: add qscale.io/triggers, or remove the others")
		}
		if len(warnings) == 0 {
			c.skip(o.Kind + " without qscale.io/triggers")
			return
		}
		c.add(o, nil, warnings)
		return
	}
	c.report.Checked++
	problems, unseen := c.load(o, annotations)
	for _, k := range notStrings {
		if strings.HasPrefix(k, AnnotationPrefix) {
			problems = append(problems, Problem{Annotation: k, Message: `must be a string: quote the value ("30", "true"); Kubernetes accepts only strings as annotation values`})
		}
	}
	SortProblems(problems)
	f := c.add(o, problems, warnings)
	for _, name := range unseen {
		f.NotChecked = append(f.NotChecked, fmt.Sprintf("Secret %q is not in the input: the parameters it may supply were not checked", name))
	}
}

// load checks a workload's annotations. It returns their problems, and the Secrets that
// authenticationRef names and the input does not hold.
func (c *checker) load(o *object, annotations map[string]string) ([]Problem, []string) {
	unseen := map[string]bool{}
	_, _, err := Load(annotations, c.reg, func(name string) (map[string]string, error) {
		if data, ok := c.secrets[o.namespace()+"/"+name]; ok {
			return data, nil
		}
		unseen[name] = true
		return nil, ErrSecretUnavailable
	})
	var se *Error
	switch {
	case errors.As(err, &se):
		return se.Problems, sortedKeys(unseen)
	case err != nil:
		return []Problem{{Message: err.Error()}}, sortedKeys(unseen)
	}
	return nil, sortedKeys(unseen)
}

// kedaAdvice says what to do with each KEDA kind, which qscale does not read.
var kedaAdvice = map[string]string{
	"ScaledObject": "convert it: put its triggers on the %s %q that it scales as the qscale.io/triggers annotation, and its settings as qscale.io annotations " +
		"(minReplicaCount → qscale.io/min-replicas, maxReplicaCount → qscale.io/max-replicas, pollingInterval → qscale.io/polling-interval, " +
		"cooldownPeriod → qscale.io/cooldown-period, fallback → qscale.io/fallback-replicas and qscale.io/fallback-failures, " +
		"advanced.horizontalPodAutoscalerConfig.behavior → qscale.io/hpa-behavior), as qscale import-keda -f does; then remove the ScaledObject, so that two autoscalers do not scale one workload",
	"ScaledJob":                    "qscale scales Deployments and StatefulSets, not Jobs: it has no equivalent",
	"TriggerAuthentication":        triggerAuthenticationAdvice,
	"ClusterTriggerAuthentication": triggerAuthenticationAdvice,
}

const triggerAuthenticationAdvice = "a qscale trigger's authenticationRef reads Secrets directly: copy this object's secretTargetRef " +
	"into the trigger's authenticationRef, or name a Secret whose keys are the trigger's parameters (username, password, …); " +
	"qscale import-keda -f does this for the ScaledObjects and TriggerAuthentications it is given"

func (c *checker) kedaWarning(o *object) string {
	advice := kedaAdvice[o.Kind]
	if o.Kind == "ScaledObject" {
		kind, name := o.scaleTarget()
		advice = fmt.Sprintf(advice, kind, name)
	}
	return fmt.Sprintf("a KEDA %s, which qscale does not read: %s", o.Kind, advice)
}

// article returns "a Kind" or "an Kind".
func article(kind string) string {
	if kind == "" {
		return "an object without a kind"
	}
	if strings.ContainsRune("AEIOU", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}
