package keda_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"maps"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/qscale/qscale/scaler/keda"
	"github.com/qscale/qscale/scaler/spec"
	"github.com/qscale/qscale/sources"
	"github.com/qscale/qscale/sources/activemq"
	"github.com/qscale/qscale/sources/kafka"
	"github.com/qscale/qscale/sources/rabbitmq"
)

var registry = sources.Registry{"activemq": activemq.Kind, "kafka": kafka.Kind, "rabbitmq": rabbitmq.Kind}

// convert converts the named fixtures of testdata, read as `qscale import-keda -f` reads them.
func convert(t *testing.T, files ...string) *keda.Result {
	t.Helper()
	inputs := make([]spec.Input, len(files))
	for i, f := range files {
		inputs[i] = spec.Input{Name: f, Data: bytes.NewReader(fixture(t, f))}
	}
	manifests, unreadable, err := spec.ReadManifests(inputs)
	if err != nil || len(unreadable) > 0 {
		t.Fatalf("reading %v: %v %v", files, err, unreadable)
	}
	return keda.Convert(manifests, registry)
}

// fixture returns a file of testdata.
func fixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := fs.ReadFile(os.DirFS("testdata"), name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// KEDA's defaults, written out since qscale's differ.
var kedaDefaults = map[string]string{
	spec.AnnotationMinReplicas: "0", spec.AnnotationMaxReplicas: "100",
	spec.AnnotationPollingInterval: "30s", spec.AnnotationCooldownPeriod: "5m0s",
}

// with returns base with the annotations of more.
func with(base, more map[string]string) map[string]string {
	out := maps.Clone(base)
	maps.Copy(out, more)
	return out
}

// convertCase is a case of TestConvert: fixtures and what their one KEDA object becomes.
type convertCase struct {
	name     string
	files    []string
	status   string
	target   *keda.Target
	settings map[string]string  // every annotation but qscale.io/triggers
	triggers []spec.TriggerSpec // qscale.io/triggers, parsed
	unmapped []string           // the fields reported, in order
	fromIn   bool               // the Object is the workload of the input
}

func TestConvert(t *testing.T) {
	tests := []convertCase{
		{
			name: "Kafka with SASL from a TriggerAuthentication's secretTargetRef", files: []string{"kafka.yaml"},
			status: keda.StatusConverted, target: &keda.Target{Kind: "Deployment", Namespace: "default", Name: "azure-functions-deployment"},
			settings: kedaDefaults,
			triggers: []spec.TriggerSpec{{Type: "kafka", Name: "kafka-0",
				Metadata: spec.Metadata{"bootstrapServers": "localhost:9092", "consumerGroup": "my-group", "topic": "test-topic", "lagThreshold": "50", "offsetResetPolicy": "latest"},
				AuthenticationRef: &spec.AuthenticationRef{SecretTargetRef: []spec.SecretTargetRef{
					{Parameter: "sasl", Name: "keda-kafka-secrets", Key: "sasl"},
					{Parameter: "username", Name: "keda-kafka-secrets", Key: "username"},
					{Parameter: "password", Name: "keda-kafka-secrets", Key: "password"},
				}}}},
		},
		{
			name: "RabbitMQ with the host from a Secret, the workload in the input", files: []string{"rabbitmq.yaml"},
			status: keda.StatusConverted, target: &keda.Target{Kind: "Deployment", Namespace: "default", Name: "rabbitmq-consumer"}, fromIn: true,
			settings: with(kedaDefaults, map[string]string{spec.AnnotationMinReplicas: "1", spec.AnnotationMaxReplicas: "30", spec.AnnotationCooldownPeriod: "2m0s"}),
			triggers: []spec.TriggerSpec{{Type: "rabbitmq", Name: "rabbitmq-0",
				Metadata:          spec.Metadata{"protocol": "amqp", "queueName": "testqueue", "mode": "QueueLength", "value": "20"},
				AuthenticationRef: &spec.AuthenticationRef{SecretTargetRef: []spec.SecretTargetRef{{Parameter: "host", Name: "keda-rabbitmq-secret", Key: "host"}}}}},
		},
		{
			name: "ActiveMQ scaling a StatefulSet, with fallback, paused replicas and KEDA's accepted metric fields", files: []string{"activemq.yaml"},
			status: keda.StatusConverted, target: &keda.Target{Kind: "StatefulSet", Namespace: "activemq-test", Name: "activemq-consumer"},
			settings: with(kedaDefaults, map[string]string{spec.AnnotationPollingInterval: "5s", spec.AnnotationFallbackReplicas: "6", spec.AnnotationFallbackFailures: "3", spec.AnnotationPausedReplicas: "2"}),
			triggers: []spec.TriggerSpec{{Type: "activemq", Name: "activemq-0",
				Metadata: spec.Metadata{"managementEndpoint": "activemq.activemq-test:8161", "destinationName": "testQueue", "brokerName": "activemq_broker",
					"targetQueueSize": "100", "activationTargetQueueSize": "10"},
				AuthenticationRef: &spec.AuthenticationRef{SecretTargetRef: []spec.SecretTargetRef{
					{Parameter: "username", Name: "activemq-secret", Key: "activemq-username"},
					{Parameter: "password", Name: "activemq-secret", Key: "activemq-password"},
				}}}},
		},
		{
			name: "a ScaledJob has no equivalent", files: []string{"scaledjob.yaml"},
			status: keda.StatusFailed, unmapped: []string{"kind"},
		},
		{
			name: "cpu and prometheus triggers are left out, the kafka one kept", files: []string{"unsupported.yaml"},
			status: keda.StatusPartial, target: &keda.Target{Kind: "Deployment", Namespace: "shop", Name: "orders"},
			settings: with(kedaDefaults, map[string]string{spec.AnnotationMinReplicas: "2"}),
			triggers: []spec.TriggerSpec{{Type: "kafka", Name: "orders",
				Metadata: spec.Metadata{"bootstrapServers": "kafka.shop:9092", "consumerGroup": "orders", "topic": "orders"}}},
			unmapped: []string{"spec.triggers[0].type", "spec.triggers[1].type"},
		},
		{
			name:   "scaling modifiers, the HPA's name and other KEDA-only settings are reported; behavior, fallback and pause carried over",
			files:  []string{"scaling-modifiers.yaml"},
			status: keda.StatusPartial, target: &keda.Target{Kind: "Deployment", Namespace: "shop", Name: "payments"},
			settings: with(kedaDefaults, map[string]string{spec.AnnotationMaxReplicas: "20", spec.AnnotationFallbackReplicas: "4", spec.AnnotationFallbackFailures: "5", spec.AnnotationPaused: "true", spec.AnnotationHPABehavior: "scaleDown:\n  policies:\n  - periodSeconds: 60\n    type: Percent\n    value: 50\n  stabilizationWindowSeconds: 300\n"}),
			triggers: []spec.TriggerSpec{
				{Type: "kafka", Name: "incoming", Metadata: spec.Metadata{"bootstrapServers": "kafka.shop:9092", "consumerGroup": "payments", "topic": "payments"}},
				{Type: "kafka", Name: "retries", Metadata: spec.Metadata{"bootstrapServers": "kafka.shop:9092", "consumerGroup": "payments", "topic": "payments-retry"}},
			},
			unmapped: []string{"spec.initialCooldownPeriod", "spec.advanced.scalingModifiers", "spec.advanced.horizontalPodAutoscalerConfig.name",
				"metadata.annotations.scaledobject.keda.sh/transfer-hpa-ownership", "spec.triggers[1] (retries).useCachedMetrics"},
		},
		{
			name:   "pod identity, a vault and a TriggerAuthentication not in the input leave their triggers out",
			files:  []string{"auth-sources.yaml"},
			status: keda.StatusPartial, target: &keda.Target{Kind: "Deployment", Namespace: "shop", Name: "ledger"},
			settings: kedaDefaults,
			triggers: []spec.TriggerSpec{{Type: "kafka", Name: "shared",
				Metadata:          spec.Metadata{"bootstrapServers": "kafka:9092", "consumerGroup": "ledger", "topic": "shared", "sasl": "plain", "username": "ledger"},
				AuthenticationRef: &spec.AuthenticationRef{SecretTargetRef: []spec.SecretTargetRef{{Parameter: "password", Name: "kafka-shared", Key: "password"}}}}},
			unmapped: []string{`TriggerAuthentication "msk-identity" spec.podIdentity`, `ClusterTriggerAuthentication "vault-rabbit" spec.hashiCorpVault`,
				"spec.triggers[2] (audit).authenticationRef", `ClusterTriggerAuthentication "shared-kafka" spec.secretTargetRef`},
		},
		{
			name: "a TriggerAuthentication in another file serves the ScaledObject", files: []string{"kafka-scaledobject.yaml", "kafka-auth.yaml"},
			status: keda.StatusConverted, target: &keda.Target{Kind: "Deployment", Namespace: "default", Name: "azure-functions-deployment"},
			settings: kedaDefaults,
			triggers: []spec.TriggerSpec{{Type: "kafka", Name: "kafka-0",
				Metadata: spec.Metadata{"bootstrapServers": "localhost:9092", "consumerGroup": "my-group", "topic": "test-topic", "lagThreshold": "50", "offsetResetPolicy": "latest"},
				AuthenticationRef: &spec.AuthenticationRef{SecretTargetRef: []spec.SecretTargetRef{
					{Parameter: "sasl", Name: "keda-kafka-secrets", Key: "sasl"},
					{Parameter: "username", Name: "keda-kafka-secrets", Key: "username"},
					{Parameter: "password", Name: "keda-kafka-secrets", Key: "password"},
				}}}},
		},
		{
			name: "without its TriggerAuthentication the trigger is left out, and nothing applied", files: []string{"kafka-scaledobject.yaml"},
			status: keda.StatusFailed, target: &keda.Target{Kind: "Deployment", Namespace: "default", Name: "azure-functions-deployment"},
			unmapped: []string{"spec.triggers[0].authenticationRef", "spec.triggers"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := convert(t, tt.files...)
			if len(r.Conversions) != 1 {
				t.Fatalf("%d conversions, want 1: %+v", len(r.Conversions), r.Conversions)
			}
			tt.check(t, r.Conversions[0])
		})
	}
}

func (tt convertCase) check(t *testing.T, c keda.Conversion) {
	t.Helper()
	if c.Status != tt.status || !reflect.DeepEqual(c.Target, tt.target) || c.WorkloadFromInput != tt.fromIn {
		t.Errorf("status %s, target %+v, from input %t; want %s, %+v, %t", c.Status, c.Target, c.WorkloadFromInput, tt.status, tt.target, tt.fromIn)
	}
	var fields []string
	for _, u := range c.Unmapped {
		fields = append(fields, u.Field)
	}
	if !reflect.DeepEqual(fields, tt.unmapped) {
		t.Errorf("unmapped %q, want %q\n%v", fields, tt.unmapped, c.Unmapped)
	}
	if len(c.Invalid) > 0 {
		t.Fatalf("the annotations do not pass qscale's checks: %v", c.Invalid)
	}
	if tt.status == keda.StatusFailed {
		if c.Object != nil {
			t.Errorf("an object to apply for a failed conversion: %v", c.Object)
		}
		return
	}
	settings := maps.Clone(c.Annotations)
	delete(settings, spec.AnnotationTriggers)
	if !reflect.DeepEqual(settings, tt.settings) {
		t.Errorf("annotations %v, want %v", settings, tt.settings)
	}
	s, err := spec.ParseSpec(c.Annotations)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Triggers, tt.triggers) {
		t.Errorf("triggers\n%+v\nwant\n%+v", s.Triggers, tt.triggers)
	}
	md, _ := c.Object["metadata"].(map[string]any)
	if c.Object["kind"] != tt.target.Kind || md["name"] != tt.target.Name || md["annotations"] == nil {
		t.Errorf("object to apply %v", c.Object)
	}
}

// Settings that are only reported, one ScaledObject each.
func TestConvertReports(t *testing.T) {
	const head = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: so, namespace: shop}\nspec:\n"
	const kafkaTrigger = "  triggers: [{type: kafka, metadata: {bootstrapServers: 'k:9092', consumerGroup: g, topic: t}}]\n"
	tests := []struct {
		name   string
		spec   string
		status string
		says   []string // the unmapped entries, field: reason, in order
	}{
		{name: "idleReplicaCount other than 0", spec: "  scaleTargetRef: {name: w}\n  idleReplicaCount: 1\n  minReplicaCount: 2\n" + kafkaTrigger,
			status: keda.StatusPartial, says: []string{"spec.idleReplicaCount: qscale idles a workload at 0 replicas only, not 1"}},
		{name: "idleReplicaCount 0 above a minReplicaCount of 1 loses the floor", spec: "  scaleTargetRef: {name: w}\n  idleReplicaCount: 0\n  minReplicaCount: 3\n" + kafkaTrigger,
			status: keda.StatusPartial, says: []string{"spec.idleReplicaCount: idleReplicaCount 0 is min-replicas 0 in qscale, whose floor while a trigger is active is 1, not minReplicaCount 3"}},
		{name: "metricType Value leaves the trigger out", spec: "  scaleTargetRef: {name: w}\n  triggers: [{type: kafka, metricType: Value, metadata: {bootstrapServers: 'k:9092', consumerGroup: g}}]\n",
			status: keda.StatusFailed, says: []string{
				"spec.triggers[0].metricType: qscale serves every trigger as an AverageValue metric (the threshold per replica), not Value",
				"spec.triggers: no trigger could be converted"}},
		{name: "a target of another kind", spec: "  scaleTargetRef: {apiVersion: argoproj.io/v1alpha1, kind: Rollout, name: w}\n" + kafkaTrigger,
			status: keda.StatusFailed, says: []string{"spec.scaleTargetRef.kind: qscale scales Deployments and StatefulSets, not a Rollout"}},
		{name: "fallback that follows the current replicas down", spec: "  scaleTargetRef: {name: w}\n  fallback: {failureThreshold: 3, replicas: 2, behavior: currentReplicasIfLower}\n" + kafkaTrigger,
			status: keda.StatusPartial, says: []string{"spec.fallback.behavior: qscale's fallback holds the larger of fallback.replicas and the current replicas"}},
		{name: "restoreToOriginalReplicaCount", spec: "  scaleTargetRef: {name: w}\n  advanced: {restoreToOriginalReplicaCount: true}\n" + kafkaTrigger,
			status: keda.StatusPartial, says: []string{"spec.advanced.restoreToOriginalReplicaCount: qscale leaves the replicas as they are"}},
		{name: "a field this version does not know", spec: "  scaleTargetRef: {name: w}\n  replicaBudget: 3\n" + kafkaTrigger,
			status: keda.StatusPartial, says: []string{"spec.replicaBudget: not a ScaledObject field this version of qscale import-keda knows"}},
		{name: "a trigger that qscale refuses is reported, and nothing applied",
			spec:   "  scaleTargetRef: {name: w}\n  triggers: [{type: kafka, metadata: {bootstrapServers: 'k:9092', consumerGroup: g, lagThreshold: '0'}}]\n",
			status: keda.StatusFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			manifests, _, err := spec.ReadManifests([]spec.Input{{Name: "so.yaml", Data: strings.NewReader(head + tt.spec)}})
			if err != nil {
				t.Fatal(err)
			}
			c := keda.Convert(manifests, registry).Conversions[0]
			if c.Status != tt.status {
				t.Errorf("status %s, want %s: %+v", c.Status, tt.status, c)
			}
			if len(c.Unmapped) != len(tt.says) {
				t.Fatalf("unmapped %v, want %d entries", c.Unmapped, len(tt.says))
			}
			for i, w := range tt.says {
				if !strings.HasPrefix(c.Unmapped[i].String(), w) {
					t.Errorf("unmapped[%d] = %q, want %q…", i, c.Unmapped[i], w)
				}
			}
			if tt.status == keda.StatusFailed && c.Object != nil {
				t.Errorf("an object to apply for a failed conversion")
			}
			if len(tt.says) == 0 && len(c.Invalid) == 0 {
				t.Errorf("no problem reported for annotations qscale refuses: %+v", c)
			}
		})
	}
}

// The objects written pass `qscale check` with the Secrets of the input, carrying the
// converted annotations.
func TestConvertRoundTrip(t *testing.T) {
	r := convert(t, "kafka.yaml", "rabbitmq.yaml", "activemq.yaml", "unsupported.yaml", "scaling-modifiers.yaml", "scaledjob.yaml")
	var out bytes.Buffer
	if err := r.WriteObjects(&out); err != nil {
		t.Fatal(err)
	}
	inputs := []spec.Input{{Name: "converted.yaml", Data: bytes.NewReader(out.Bytes())}}
	for _, f := range []string{"kafka.yaml", "rabbitmq.yaml", "activemq.yaml"} { // for their Secrets
		inputs = append(inputs, spec.Input{Name: f, Data: bytes.NewReader(fixture(t, f))})
	}
	report, err := spec.CheckManifests(inputs, registry)
	if err != nil {
		t.Fatal(err)
	}
	var checked []string
	for _, f := range report.Findings {
		if f.File != "converted.yaml" {
			continue
		}
		checked = append(checked, f.Object())
		if f.Status != spec.StatusOK || len(f.NotChecked) > 0 {
			t.Errorf("%s: %s %v %v %v", f.Object(), f.Status, f.Errors, f.Warnings, f.NotChecked)
		}
	}
	want := []string{"Deployment default/azure-functions-deployment", "Deployment default/rabbitmq-consumer",
		"StatefulSet activemq-test/activemq-consumer", "Deployment shop/orders", "Deployment shop/payments"}
	if !reflect.DeepEqual(checked, want) {
		t.Fatalf("checked %q, want %q\n%s", checked, want, out.String())
	}
	written := writtenAnnotations(t, out.Bytes())
	for _, c := range r.Conversions {
		if c.Object == nil {
			continue
		}
		if got := written[c.Target.Kind+" "+c.Target.Namespace+"/"+c.Target.Name]; !reflect.DeepEqual(got, c.Annotations) {
			t.Errorf("%s written with annotations %v, want %v", c.Name, got, c.Annotations)
		}
	}
}

// writtenAnnotations returns the annotations of each object of YAML, by `Kind namespace/name`.
func writtenAnnotations(t *testing.T, yaml []byte) map[string]map[string]string {
	t.Helper()
	manifests, _, err := spec.ReadManifests([]spec.Input{{Name: "converted.yaml", Data: bytes.NewReader(yaml)}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for _, m := range manifests {
		var o struct {
			Metadata struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(m.JSON, &o); err != nil {
			t.Fatal(err)
		}
		out[m.Kind+" "+m.InNamespace()+"/"+m.Name] = o.Metadata.Annotations
	}
	return out
}
