package spec

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

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

// duration reads a Go duration, or a whole number of seconds as KEDA's pollingInterval and
// cooldownPeriod are written, so that a copied "30" means 30s.
func (p *specParser) duration(key string, def, least time.Duration) time.Duration {
	v, ok := p.lookup(key)
	if !ok {
		return def
	}
	d, err := parseSeconds(v)
	if err != nil || d < least {
		p.add(key, "", fmt.Sprintf("must be a duration of at least %s such as 30s or 5m, or a whole number of seconds, got %q", least, v))
		return def
	}
	return d
}

// parseSeconds parses a Go duration or a whole number of seconds.
func parseSeconds(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err == nil {
		return d, nil
	}
	n, nerr := strconv.ParseInt(v, 10, 64)
	if nerr != nil || n > int64(math.MaxInt64/time.Second) || n < int64(math.MinInt64/time.Second) {
		return 0, err
	}
	return time.Duration(n) * time.Second, nil
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
	raws, problem := triggerList(v)
	if problem != "" {
		p.add(AnnotationTriggers, "", problem)
		return nil
	}
	if len(raws) == 0 {
		p.add(AnnotationTriggers, "", "lists no trigger")
	}
	ts := make([]TriggerSpec, 0, len(raws))
	seen := map[string]int{}
	for i, raw := range raws {
		t, problems, ok := decodeTrigger(i, raw)
		p.problems = append(p.problems, problems...)
		if !ok { // kept in place, so that the triggers after it keep their index
			ts = append(ts, TriggerSpec{Name: defaultTriggerName("", i)})
			continue
		}
		field := func(f string) string { return fmt.Sprintf("[%d].%s", i, f) }
		if t.Type == "" {
			p.add(AnnotationTriggers, field("type"), "is required")
		}
		if t.Name == "" {
			t.Name = defaultTriggerName(t.Type, i)
		} else if errs := validation.IsDNS1123Label(t.Name); len(errs) > 0 {
			p.add(AnnotationTriggers, field("name"), fmt.Sprintf("%q is not a DNS label: %s", t.Name, strings.Join(errs, "; ")))
		}
		if j, dup := seen[t.Name]; dup {
			p.add(AnnotationTriggers, field("name"), fmt.Sprintf("%q is also the name of trigger %d", t.Name, j))
		}
		seen[t.Name] = i
		if a := t.AuthenticationRef; a != nil && a.Name == "" && len(a.SecretTargetRef) == 0 {
			p.add(AnnotationTriggers, fmt.Sprintf("[%d] (%s).authenticationRef.name", i, t.Name),
				"is required unless secretTargetRef is given: the name of a Secret in the workload's namespace whose keys are the trigger's parameters")
		}
		ts = append(ts, t)
	}
	return ts
}

// triggerList splits the triggers annotation into its entries, or says why it cannot.
func triggerList(v string) ([]json.RawMessage, string) {
	js, err := yaml.YAMLToJSONStrict([]byte(v))
	if err != nil {
		return nil, "must be a YAML or JSON list of triggers: " + strings.Join(strings.Fields(err.Error()), " ")
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(js, &raws); err != nil {
		return nil, "must be a YAML or JSON list of triggers, got " + jsonKind(js)
	}
	return raws, ""
}
