package keda

import (
	"encoding/json"

	"github.com/qscale/qscale/scaler/spec"
)

// The KEDA objects, as far as conversion reads them: small local types rather than KEDA's
// module, which would bring its dependencies for a few fields. Fields whose shape conversion
// never needs are kept raw; every field is listed in the known… sets below, so that one this
// version does not know is reported rather than dropped in silence.

// kedaGroup is the API group of KEDA's objects.
const kedaGroup = "keda.sh"

type scaledObject struct {
	Metadata struct {
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec scaledObjectSpec `json:"spec"`
	// fields are the keys of spec, to report those conversion does not know.
	fields map[string]json.RawMessage
}

type scaledObjectSpec struct {
	ScaleTargetRef        scaleTargetRef `json:"scaleTargetRef"`
	PollingInterval       *int32         `json:"pollingInterval"`
	CooldownPeriod        *int32         `json:"cooldownPeriod"`
	InitialCooldownPeriod *int32         `json:"initialCooldownPeriod"`
	IdleReplicaCount      *int32         `json:"idleReplicaCount"`
	MinReplicaCount       *int32         `json:"minReplicaCount"`
	MaxReplicaCount       *int32         `json:"maxReplicaCount"`
	Advanced              *advanced      `json:"advanced"`
	Fallback              *fallback      `json:"fallback"`
	Triggers              []trigger      `json:"triggers"`
}

var knownSpecFields = map[string]bool{
	"scaleTargetRef": true, "pollingInterval": true, "cooldownPeriod": true, "initialCooldownPeriod": true,
	"idleReplicaCount": true, "minReplicaCount": true, "maxReplicaCount": true, "advanced": true,
	"fallback": true, "triggers": true,
}

type scaleTargetRef struct {
	APIVersion             string `json:"apiVersion"`
	Kind                   string `json:"kind"`
	Name                   string `json:"name"`
	EnvSourceContainerName string `json:"envSourceContainerName"`
}

type advanced struct {
	RestoreToOriginalReplicaCount bool `json:"restoreToOriginalReplicaCount"`
	HorizontalPodAutoscalerConfig *struct {
		Name     string          `json:"name"`
		Behavior json.RawMessage `json:"behavior"`
	} `json:"horizontalPodAutoscalerConfig"`
	ScalingModifiers json.RawMessage `json:"scalingModifiers"`
}

type fallback struct {
	FailureThreshold int32  `json:"failureThreshold"`
	Replicas         int32  `json:"replicas"`
	Behavior         string `json:"behavior"`
}

type trigger struct {
	Type              string         `json:"type"`
	Name              string         `json:"name"`
	Metadata          spec.Metadata  `json:"metadata"`
	AuthenticationRef *kedaAuthRef   `json:"authenticationRef"`
	MetricType        string         `json:"metricType"`
	UseCachedMetrics  *bool          `json:"useCachedMetrics"`
	fields            map[string]any // the keys written, to report those conversion does not know
}

var knownTriggerFields = map[string]bool{
	"type": true, "name": true, "metadata": true, "authenticationRef": true, "metricType": true, "useCachedMetrics": true,
}

// kedaAuthRef names a TriggerAuthentication, or with kind a ClusterTriggerAuthentication.
type kedaAuthRef struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
}

// triggerAuthentication is the spec of a TriggerAuthentication or ClusterTriggerAuthentication.
// Only secretTargetRef has a qscale equivalent; every other source is kept raw, to be named.
type triggerAuthentication struct {
	SecretTargetRef []spec.SecretTargetRef `json:"secretTargetRef"`
	PodIdentity     *struct {
		Provider string `json:"provider"`
	} `json:"podIdentity"`
	fields map[string]json.RawMessage
}

// decodeScaledObject decodes a ScaledObject, and the keys of its spec and of its triggers.
func decodeScaledObject(raw json.RawMessage) (*scaledObject, error) {
	var so scaledObject
	if err := json.Unmarshal(raw, &so); err != nil {
		return nil, err
	}
	var keys struct {
		Spec struct {
			Triggers []map[string]any `json:"triggers"`
		} `json:"spec"`
	}
	var specKeys struct {
		Spec map[string]json.RawMessage `json:"spec"`
	}
	if err := json.Unmarshal(raw, &specKeys); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &keys); err != nil {
		return nil, err
	}
	so.fields = specKeys.Spec
	for i := range so.Spec.Triggers {
		if i < len(keys.Spec.Triggers) {
			so.Spec.Triggers[i].fields = keys.Spec.Triggers[i]
		}
	}
	return &so, nil
}

// decodeTriggerAuthentication decodes the spec of a (Cluster)TriggerAuthentication.
func decodeTriggerAuthentication(raw json.RawMessage) (*triggerAuthentication, error) {
	var obj struct {
		Spec json.RawMessage `json:"spec"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, err
	}
	ta := &triggerAuthentication{}
	if len(obj.Spec) == 0 || string(obj.Spec) == "null" {
		return ta, nil
	}
	if err := json.Unmarshal(obj.Spec, ta); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(obj.Spec, &ta.fields); err != nil {
		return nil, err
	}
	return ta, nil
}
