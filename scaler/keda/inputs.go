package keda

import (
	"encoding/json"
	"errors"
	"maps"
	"strings"

	"github.com/qscale/qscale/scaler/spec"
)

// inputs indexes the objects a conversion reads besides the ScaledObjects.
type inputs struct {
	triggerAuths        map[string]spec.Manifest // by namespace/name
	clusterTriggerAuths map[string]spec.Manifest // by name
	workloads           map[Target]spec.Manifest // namespace "default" when the object names none
	secrets             map[string]spec.Manifest // by namespace/name
}

func index(manifests []spec.Manifest) *inputs {
	in := &inputs{triggerAuths: map[string]spec.Manifest{}, clusterTriggerAuths: map[string]spec.Manifest{},
		workloads: map[Target]spec.Manifest{}, secrets: map[string]spec.Manifest{}}
	for _, m := range manifests {
		switch {
		case m.Group() == kedaGroup && m.Kind == "TriggerAuthentication":
			in.triggerAuths[m.InNamespace()+"/"+m.Name] = m
		case m.Group() == kedaGroup && m.Kind == "ClusterTriggerAuthentication":
			in.clusterTriggerAuths[m.Name] = m
		case m.APIVersion == "apps/v1" && (m.Kind == "Deployment" || m.Kind == "StatefulSet"):
			in.workloads[Target{Kind: m.Kind, Namespace: m.InNamespace(), Name: m.Name}] = m
		case m.APIVersion == "v1" && m.Kind == "Secret":
			in.secrets[m.InNamespace()+"/"+m.Name] = m
		}
	}
	return in
}

func (in *inputs) triggerAuthentication(namespace, name string) (*triggerAuthentication, bool, error) {
	m, ok := in.triggerAuths[namespace+"/"+name]
	if !ok {
		return nil, false, nil
	}
	ta, err := decodeTriggerAuthentication(m.JSON)
	return ta, true, err
}

func (in *inputs) clusterTriggerAuthentication(name string) (*triggerAuthentication, bool, error) {
	m, ok := in.clusterTriggerAuths[name]
	if !ok {
		return nil, false, nil
	}
	ta, err := decodeTriggerAuthentication(m.JSON)
	return ta, true, err
}

// secret looks a Secret of the input up as the controller would, in namespace: one that is
// not in the input cannot be seen, which is not an error.
func (in *inputs) secret(namespace string) spec.SecretLookup {
	return func(name string) (map[string]string, error) {
		m, ok := in.secrets[namespace+"/"+name]
		if !ok {
			return nil, spec.ErrSecretUnavailable
		}
		data, err := m.SecretData()
		if err != nil {
			return nil, spec.ErrSecretUnavailable
		}
		return data, nil
	}
}

// object returns what to apply for target: the workload of the input with ann in place of
// its qscale.io annotations, or, when the input does not hold it, an object with only its
// identity and ann, for `kubectl patch` or a server-side apply. namespace is the
// ScaledObject's, as written.
func (in *inputs) object(target Target, namespace string, ann map[string]string) (map[string]any, bool) {
	key := target
	if key.Namespace == "" {
		key.Namespace = "default"
	}
	if m, ok := in.workloads[key]; ok {
		var obj map[string]any
		if err := json.Unmarshal(m.JSON, &obj); err == nil {
			if md, ok := obj["metadata"].(map[string]any); ok {
				md["annotations"] = mergeAnnotations(md["annotations"], ann)
				return obj, true
			}
		}
	}
	md := map[string]any{"name": target.Name, "annotations": stringMap(ann)}
	if namespace != "" {
		md["namespace"] = namespace
	}
	return map[string]any{"apiVersion": "apps/v1", "kind": target.Kind, "metadata": md}, false
}

// mergeAnnotations puts ann in place of the qscale.io annotations of existing: one left from
// an earlier conversion would otherwise outlive the setting it came from.
func mergeAnnotations(existing any, ann map[string]string) map[string]any {
	out := map[string]any{}
	if m, ok := existing.(map[string]any); ok {
		for k, v := range m {
			if !strings.HasPrefix(k, spec.AnnotationPrefix) {
				out[k] = v
			}
		}
	}
	maps.Copy(out, stringMap(ann))
	return out
}

func stringMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// validate checks the converted annotations as the controller and `qscale check` do, with
// the Secrets of the input; a Secret the input does not hold is noted, not an error.
func (cv *converter) validate(target Target, ann map[string]string) {
	namespace := target.Namespace
	if namespace == "" {
		namespace = "default"
	}
	lookup := cv.in.secret(namespace)
	var unseen []string
	_, _, err := spec.Load(ann, cv.reg, func(name string) (map[string]string, error) {
		data, err := lookup(name)
		if errors.Is(err, spec.ErrSecretUnavailable) {
			unseen = append(unseen, name)
		}
		return data, err
	})
	var se *spec.Error
	switch {
	case errors.As(err, &se):
		cv.c.Invalid = se.Problems
	case err != nil:
		cv.c.Invalid = []spec.Problem{{Message: err.Error()}}
	}
	for _, name := range unseen {
		cv.c.NotChecked = append(cv.c.NotChecked, "Secret \""+name+"\" is not in the input: the parameters it supplies were not checked")
	}
}
