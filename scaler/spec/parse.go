package spec

import (
	"fmt"
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
