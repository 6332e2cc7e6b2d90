package keda

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	yamlv2 "go.yaml.in/yaml/v2"

	"github.com/qscale/qscale/scaler/spec"
)

// triggers converts the triggers qscale has an equivalent for. A trigger that would not keep
// its meaning (another type, a metricType qscale does not serve, credentials that cannot be
// carried over) is left out and reported, never converted into something else.
func (cv *converter) triggers(ts []trigger) []spec.TriggerSpec {
	var out []spec.TriggerSpec
	for i, t := range ts {
		field := fmt.Sprintf("spec.triggers[%d]", i)
		if t.Name != "" {
			field += fmt.Sprintf(" (%s)", t.Name)
		}
		if ok := cv.triggerFields(field, t); !ok {
			continue
		}
		ts := spec.TriggerSpec{Type: t.Type, Name: t.Name, Metadata: t.Metadata}
		if t.AuthenticationRef != nil {
			ref, ok := cv.authentication(field+".authenticationRef", t.AuthenticationRef)
			if !ok {
				continue
			}
			ts.AuthenticationRef = ref
		}
		out = append(out, ts)
	}
	return out
}

// triggerFields reports what of a trigger has no qscale equivalent, and whether the trigger
// can be converted at all.
func (cv *converter) triggerFields(field string, t trigger) bool {
	if _, known := cv.reg[t.Type]; !known {
		cv.unmapped(field+".type", "qscale has no %q trigger (it has %s): the trigger is left out", t.Type, strings.Join(cv.reg.Types(), ", "))
		return false
	}
	ok := true
	switch t.MetricType {
	case "", "AverageValue":
	default:
		cv.unmapped(field+".metricType", "qscale serves every trigger as an AverageValue metric (the threshold per replica), not %s: the trigger is left out; convert it by hand with a threshold per replica", t.MetricType)
		ok = false
	}
	if t.UseCachedMetrics != nil && !*t.UseCachedMetrics {
		cv.unmapped(field+".useCachedMetrics", "qscale always serves the value of its last poll and never reads the broker for an HPA request: false is dropped")
	}
	for _, key := range slices.Sorted(maps.Keys(t.fields)) {
		if !knownTriggerFields[key] {
			cv.unmapped(field+"."+key, "not a trigger field this version of qscale import-keda knows")
		}
	}
	return ok
}

// authentication converts a trigger's authenticationRef: the secretTargetRef of the
// TriggerAuthentication (or ClusterTriggerAuthentication) it names becomes the trigger's
// own, so that the same Secrets are read. A reference that cannot be carried over whole
// leaves the trigger out: without its credentials it would not work.
func (cv *converter) authentication(field string, ref *kedaAuthRef) (*spec.AuthenticationRef, bool) {
	kind := ref.Kind
	if kind == "" {
		kind = "TriggerAuthentication"
	}
	var ta *triggerAuthentication
	var found bool
	var err error
	switch kind {
	case "TriggerAuthentication":
		ta, found, err = cv.in.triggerAuthentication(cv.m.InNamespace(), ref.Name)
	case "ClusterTriggerAuthentication":
		ta, found, err = cv.in.clusterTriggerAuthentication(ref.Name)
	default:
		cv.unmapped(field+".kind", "must be TriggerAuthentication or ClusterTriggerAuthentication, got %q: the trigger is left out", kind)
		return nil, false
	}
	switch {
	case err != nil:
		cv.unmapped(field, "%s %q cannot be read: %v: the trigger is left out", kind, ref.Name, err)
		return nil, false
	case !found:
		cv.unmapped(field, "%s %q is not in the input: pass it with -f so that its secretTargetRef can be converted; the trigger is left out", kind, ref.Name)
		return nil, false
	}
	at := fmt.Sprintf("%s %q", kind, ref.Name)
	ok := true
	for _, key := range slices.Sorted(maps.Keys(ta.fields)) {
		switch {
		case key == "secretTargetRef":
		case key == "podIdentity" && (ta.PodIdentity == nil || ta.PodIdentity.Provider == "" || ta.PodIdentity.Provider == "none"):
		default:
			cv.unmapped(at+" spec."+key, "%s: the trigger is left out", authSourceReason(key))
			ok = false
		}
	}
	if !ok {
		return nil, false
	}
	if len(ta.SecretTargetRef) == 0 {
		cv.unmapped(at+" spec.secretTargetRef", "lists no Secret: the trigger is left out")
		return nil, false
	}
	if kind == "ClusterTriggerAuthentication" {
		cv.unmapped(at+" spec.secretTargetRef", "a ClusterTriggerAuthentication reads Secrets in KEDA's namespace, qscale in the workload's: copy Secrets %s into namespace %q",
			quotedNames(ta.SecretTargetRef), cv.m.InNamespace())
	}
	return &spec.AuthenticationRef{SecretTargetRef: ta.SecretTargetRef}, true
}

// authSourceReason says why a source of credentials of a TriggerAuthentication is not carried over.
func authSourceReason(key string) string {
	switch key {
	case "podIdentity":
		return "qscale reads credentials from Secrets only, not from a pod identity"
	case "env":
		return "qscale reads credentials from Secrets only, not from the workload's environment"
	case "configMapTargetRef":
		return "qscale reads trigger parameters from Secrets only, not from ConfigMaps"
	case "hashiCorpVault", "azureKeyVault", "awsSecretManager", "gcpSecretManager":
		return "qscale reads credentials from Secrets only, not from " + key + ": sync the secret into a Secret (External Secrets Operator, say) and map it with secretTargetRef"
	}
	return "qscale reads credentials from Secrets only (secretTargetRef)"
}

func quotedNames(refs []spec.SecretTargetRef) string {
	var names []string
	for _, r := range refs {
		q := fmt.Sprintf("%q", r.Name)
		if !slices.Contains(names, q) {
			names = append(names, q)
		}
	}
	return strings.Join(names, ", ")
}

// triggersAnnotation writes the triggers as the YAML list qscale.io/triggers holds, each
// field in the order KEDA's documentation writes them (type first) rather than sorted, so
// that the annotation reads like the trigger it came from.
func triggersAnnotation(ts []spec.TriggerSpec) (string, error) {
	list := make([]yamlv2.MapSlice, len(ts))
	for i, t := range ts {
		item := yamlv2.MapSlice{{Key: "type", Value: t.Type}}
		if t.Name != "" {
			item = append(item, yamlv2.MapItem{Key: "name", Value: t.Name})
		}
		if len(t.Metadata) > 0 {
			item = append(item, yamlv2.MapItem{Key: "metadata", Value: map[string]string(t.Metadata)})
		}
		if a := t.AuthenticationRef; a != nil {
			refs := make([]yamlv2.MapSlice, len(a.SecretTargetRef))
			for j, m := range a.SecretTargetRef {
				refs[j] = yamlv2.MapSlice{{Key: "parameter", Value: m.Parameter}, {Key: "name", Value: m.Name}, {Key: "key", Value: m.Key}}
			}
			item = append(item, yamlv2.MapItem{Key: "authenticationRef", Value: yamlv2.MapSlice{{Key: "secretTargetRef", Value: refs}}})
		}
		list[i] = item
	}
	b, err := yamlv2.Marshal(list)
	if err != nil {
		return "", fmt.Errorf("writing the triggers: %w", err)
	}
	return string(b), nil
}

// isKEDAAnnotation reports whether an annotation is one KEDA reads.
func isKEDAAnnotation(key string) bool {
	prefix, _, found := strings.Cut(key, "/")
	return found && (prefix == "keda.sh" || strings.HasSuffix(prefix, ".keda.sh"))
}
