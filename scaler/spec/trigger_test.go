package spec_test

import (
	"reflect"
	"testing"

	"github.com/qscale/qscale/scaler/spec"
)

// A trigger copied from a ScaledObject is read field by field: KEDA's metricType and
// useCachedMetrics pass where qscale keeps their meaning, and every other problem names the
// trigger and the field.
func TestTriggerFields(t *testing.T) {
	const md = "  metadata: {bootstrapServers: 'k:9092', consumerGroup: g, topic: orders}\n"
	kafka := spec.TriggerSpec{Type: "kafka", Name: "kafka-0", Metadata: spec.Metadata{"bootstrapServers": "k:9092", "consumerGroup": "g", "topic": "orders"}}
	tests := []struct {
		name string
		trig string
		want []string // problems, in order; none: the trigger parses as kafka
	}{
		{name: "metricType AverageValue is what qscale serves", trig: "- type: kafka\n  metricType: AverageValue\n" + md},
		{name: "useCachedMetrics true is what qscale does", trig: "- type: kafka\n  useCachedMetrics: true\n" + md},
		{name: "useCachedMetrics as a string", trig: "- type: kafka\n  useCachedMetrics: 'true'\n" + md},
		{name: "null fields", trig: "- type: kafka\n  metricType: null\n  useCachedMetrics: null\n  name: null\n" + md},
		{name: "JSON as KEDA's API returns it", trig: `[{"type":"kafka","metricType":"AverageValue","useCachedMetrics":true,"metadata":{"bootstrapServers":"k:9092","consumerGroup":"g","topic":"orders"}}]`},
		{name: "metricType Value", trig: "- type: kafka\n  metricType: Value\n" + md,
			want: []string{"qscale.io/triggers: [0] (kafka-0).metricType: Value is not supported: qscale serves every trigger as an AverageValue metric"}},
		{name: "metricType Utilization", trig: "- type: kafka\n  metricType: Utilization\n" + md,
			want: []string{"qscale.io/triggers: [0] (kafka-0).metricType: Utilization is for KEDA's cpu and memory triggers"}},
		{name: "metricType misspelt", trig: "- type: kafka\n  metricType: averagevalue\n" + md,
			want: []string{`qscale.io/triggers: [0] (kafka-0).metricType: must be AverageValue (what qscale serves) or left out, got "averagevalue"`}},
		{name: "metricType not a string", trig: "- type: kafka\n  metricType: [Value]\n" + md,
			want: []string{"qscale.io/triggers: [0] (kafka-0).metricType: must be a string, got a list"}},
		{name: "useCachedMetrics false", trig: "- type: kafka\n  useCachedMetrics: false\n" + md,
			want: []string{"qscale.io/triggers: [0] (kafka-0).useCachedMetrics: false is not supported: qscale always serves the value of its last poll"}},
		{name: "useCachedMetrics not a boolean", trig: "- type: kafka\n  useCachedMetrics: 1\n" + md,
			want: []string{"qscale.io/triggers: [0] (kafka-0).useCachedMetrics: must be true or false, got a number"}},
		{name: "useCachedMetrics a string that is no boolean", trig: "- type: kafka\n  useCachedMetrics: always\n" + md,
			want: []string{`qscale.io/triggers: [0] (kafka-0).useCachedMetrics: must be true or false, got "always"`}},
		{name: "a named trigger is named by its name", trig: "- type: kafka\n  name: orders\n  metricType: Value\n" + md,
			want: []string{"qscale.io/triggers: [0] (orders).metricType: Value is not supported"}},
		{name: "unknown field of the second trigger", trig: "- type: kafka\n" + md + "- type: rabbitmq\n  authRef: {name: x}\n",
			want: []string{`qscale.io/triggers: [1] (rabbitmq-1).authRef: unknown field: a trigger has type, name, metadata, authenticationRef, metricType and useCachedMetrics`}},
		{name: "KEDA's authenticationRef kind", trig: "- type: kafka\n  authenticationRef: {name: creds, kind: ClusterTriggerAuthentication}\n" + md,
			want: []string{"qscale.io/triggers: [0] (kafka-0).authenticationRef.kind: qscale reads Secrets, not a KEDA TriggerAuthentication: remove kind, and either name the Secret whose keys are the trigger's parameters (username, password, …) or copy the TriggerAuthentication's secretTargetRef"}},
		{name: "authenticationRef without name", trig: "- type: kafka\n  authenticationRef: {secret: creds}\n" + md,
			want: []string{
				"qscale.io/triggers: [0] (kafka-0).authenticationRef.secret: unknown field: authenticationRef has name and secretTargetRef",
				"qscale.io/triggers: [0] (kafka-0).authenticationRef.name: is required unless secretTargetRef is given: the name of a Secret",
			}},
		{name: "authenticationRef not a map", trig: "- type: kafka\n  authenticationRef: creds\n" + md,
			want: []string{"qscale.io/triggers: [0] (kafka-0).authenticationRef: must be a map with the name of a Secret or a secretTargetRef list, got a string"}},
		{name: "type not a string", trig: "- type: {kafka: true}\n" + md,
			want: []string{"qscale.io/triggers: [0].type: must be a string, got a map", "qscale.io/triggers: [0].type: is required"}},
		{name: "metadata not a map", trig: "- type: kafka\n  metadata: [a]\n",
			want: []string{"qscale.io/triggers: [0] (kafka-0).metadata: must be a map of parameter names to values"}},
		{name: "an entry that is not a map", trig: "- kafka\n",
			want: []string{"qscale.io/triggers: [0]: must be a map with type, metadata and optionally name and authenticationRef, got a string"}},
		{name: "every problem of every trigger at once", trig: "- type: kafka\n  metricType: Value\n  useCachedMetrics: false\n  tpye: x\n" + md + "- 3\n- type: kafka\n  name: Bad\n  metricType: Utilization\n",
			want: []string{
				"[0] (kafka-0).metricType: Value is not supported",
				"[0] (kafka-0).useCachedMetrics: false is not supported",
				`[0] (kafka-0).tpye: unknown field: a trigger has type, name, metadata, authenticationRef, metricType and useCachedMetrics (did you mean "type"?)`,
				"[1]: must be a map with type, metadata and optionally name and authenticationRef, got a number",
				"[2] (Bad).metricType: Utilization is for KEDA's cpu and memory triggers",
				`[2].name: "Bad" is not a DNS label`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := spec.ParseSpec(map[string]string{spec.AnnotationTriggers: tt.trig})
			if len(tt.want) > 0 {
				checkProblems(t, err, tt.want)
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if len(s.Triggers) != 1 || !reflect.DeepEqual(s.Triggers[0], kafka) {
				t.Errorf("triggers %+v, want [%+v]", s.Triggers, kafka)
			}
		})
	}
}

// authenticationRef takes a Secret's name, KEDA's secretTargetRef mappings, or both; every
// problem of a mapping names its index and field.
func TestAuthenticationRef(t *testing.T) {
	const head = "- type: kafka\n  name: orders\n  metadata: {bootstrapServers: 'k:9092', consumerGroup: g}\n  authenticationRef:\n"
	tests := []struct {
		name string
		ref  string // the lines under authenticationRef
		want *spec.AuthenticationRef
		errs []string // problems, in order; none: the reference reads as want
	}{
		{name: "name alone", ref: "    name: creds\n", want: &spec.AuthenticationRef{Name: "creds"}},
		{name: "secretTargetRef alone",
			ref: "    secretTargetRef:\n    - {parameter: password, name: kafka-secrets, key: sasl-password}\n    - {parameter: username, name: kafka-user, key: user}\n",
			want: &spec.AuthenticationRef{SecretTargetRef: []spec.SecretTargetRef{
				{Parameter: "password", Name: "kafka-secrets", Key: "sasl-password"}, {Parameter: "username", Name: "kafka-user", Key: "user"}}}},
		{name: "name and secretTargetRef",
			ref:  "    name: creds\n    secretTargetRef: [{parameter: password, name: kafka-secrets, key: sasl-password}]\n",
			want: &spec.AuthenticationRef{Name: "creds", SecretTargetRef: []spec.SecretTargetRef{{Parameter: "password", Name: "kafka-secrets", Key: "sasl-password"}}}},
		{name: "an empty secretTargetRef without name", ref: "    secretTargetRef: []\n",
			errs: []string{"[0] (orders).authenticationRef.name: is required unless secretTargetRef is given"}},
		{name: "secretTargetRef not a list", ref: "    secretTargetRef: {parameter: password}\n",
			errs: []string{"[0] (orders).authenticationRef.secretTargetRef: must be a list of entries with parameter, name and key, got a map",
				"[0] (orders).authenticationRef.name: is required unless secretTargetRef is given"}},
		{name: "an entry that is not a map", ref: "    secretTargetRef: [password]\n",
			errs: []string{"[0] (orders).authenticationRef.secretTargetRef[0]: must be a map with parameter, name and key, got a string"}},
		{name: "every missing field of an entry", ref: "    secretTargetRef: [{parameter: password}]\n",
			errs: []string{
				"[0] (orders).authenticationRef.secretTargetRef[0].name: is required: a Secret in the workload's namespace",
				"[0] (orders).authenticationRef.secretTargetRef[0].key: is required: the key of that Secret",
			}},
		{name: "a field that is not a string", ref: "    secretTargetRef: [{parameter: password, name: s, key: [k]}]\n",
			errs: []string{
				"[0] (orders).authenticationRef.secretTargetRef[0].key: must be a string, got a list",
				"[0] (orders).authenticationRef.secretTargetRef[0].key: is required",
			}},
		{name: "a misspelt field", ref: "    secretTargetRef: [{parameter: password, name: s, kye: k}]\n",
			errs: []string{
				`[0] (orders).authenticationRef.secretTargetRef[0].kye: unknown field: a secretTargetRef entry has parameter, name and key (did you mean "key"?)`,
				"[0] (orders).authenticationRef.secretTargetRef[0].key: is required",
			}},
		{name: "a parameter supplied twice", ref: "    secretTargetRef:\n    - {parameter: password, name: a, key: k}\n    - {parameter: password, name: b, key: k}\n",
			errs: []string{`[0] (orders).authenticationRef.secretTargetRef[1].parameter: "password" is also supplied by secretTargetRef[0]`}},
		{name: "a misspelt secretTargetRef", ref: "    name: creds\n    secretTargetRefs: []\n",
			errs: []string{`[0] (orders).authenticationRef.secretTargetRefs: unknown field: authenticationRef has name and secretTargetRef (did you mean "secretTargetRef"?)`}},
		{name: "KEDA's kind beside a TriggerAuthentication's name", ref: "    name: kafka-auth\n    kind: TriggerAuthentication\n",
			errs: []string{"[0] (orders).authenticationRef.kind: qscale reads Secrets, not a KEDA TriggerAuthentication"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := spec.ParseSpec(map[string]string{spec.AnnotationTriggers: head + tt.ref})
			if len(tt.errs) > 0 {
				checkProblems(t, err, tt.errs)
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got := s.Triggers[0].AuthenticationRef; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("authenticationRef %+v, want %+v", got, tt.want)
			}
		})
	}
}

// The triggers after an entry that is not a map keep their index, in ParseSpec's problems
// and in Compile's.
func TestTriggerIndexAfterABadEntry(t *testing.T) {
	_, _, err := spec.Load(map[string]string{spec.AnnotationTriggers: "- nope\n- type: kafka\n  metadata: {bootstrapServers: 'k:9092'}\n"},
		registry, secretsOf(nil))
	checkProblems(t, err, []string{
		"qscale.io/triggers: [0]: must be a map",
		"qscale.io/triggers: [1] (kafka-1).metadata.consumerGroup: is required",
	})
}
