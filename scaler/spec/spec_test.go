package spec_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/qscale/qscale/scaler/policy"
	"github.com/qscale/qscale/scaler/spec"
	"github.com/qscale/qscale/sources"
	"github.com/qscale/qscale/sources/kafka"
)

const kafkaTrigger = `
- type: kafka
  name: orders
  metadata:
    bootstrapServers: k:9092
    consumerGroup: g
    topic: orders
    lagThreshold: 50
`

func TestParseSpec(t *testing.T) {
	zero := int32(0)
	tests := []struct {
		name string
		ann  map[string]string
		spec *spec.Spec // the parsed spec, when valid
		want []string   // problems, in order
	}{
		{
			name: "defaults; an unquoted number reads as its text",
			ann:  map[string]string{spec.AnnotationTriggers: kafkaTrigger},
			spec: &spec.Spec{
				Triggers: []spec.TriggerSpec{{Type: "kafka", Name: "orders", Metadata: spec.Metadata{
					"bootstrapServers": "k:9092", "consumerGroup": "g", "topic": "orders", "lagThreshold": "50"}}},
				MinReplicas: 1, MaxReplicas: 100, PollingInterval: 10 * time.Second, CooldownPeriod: 5 * time.Minute, FallbackFailures: 3,
			},
		},
		{
			name: "every annotation; default trigger names",
			ann: map[string]string{
				spec.AnnotationTriggers:         `[{"type":"kafka","metadata":{"topic":"a"}},{"type":"kafka","metadata":{"topic":"b"}}]`,
				spec.AnnotationMinReplicas:      "0",
				spec.AnnotationMaxReplicas:      "12",
				spec.AnnotationPollingInterval:  "2s",
				spec.AnnotationCooldownPeriod:   "30s",
				spec.AnnotationFallbackReplicas: "4",
				spec.AnnotationFallbackFailures: "2",
				spec.AnnotationPaused:           "true",
				spec.AnnotationPausedReplicas:   "0",
				spec.AnnotationHPABehavior:      "scaleDown:\n  stabilizationWindowSeconds: 0\n",
			},
			spec: &spec.Spec{
				Triggers: []spec.TriggerSpec{
					{Type: "kafka", Name: "kafka-0", Metadata: spec.Metadata{"topic": "a"}},
					{Type: "kafka", Name: "kafka-1", Metadata: spec.Metadata{"topic": "b"}},
				},
				MinReplicas: 0, MaxReplicas: 12, PollingInterval: 2 * time.Second, CooldownPeriod: 30 * time.Second,
				FallbackReplicas: 4, FallbackFailures: 2, Paused: true, PausedReplicas: &zero,
				Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: &zero}},
			},
		},
		{
			name: "every problem at once",
			ann: map[string]string{
				spec.AnnotationTriggers:        "- type: kafka\n  name: Orders\n- name: x\n  type: kafka\n- type: kafka\n  name: x\n",
				spec.AnnotationMinReplicas:     "-1",
				spec.AnnotationMaxReplicas:     "many",
				spec.AnnotationPollingInterval: "10 seconds",
				spec.AnnotationPaused:          "yes",
				"qscale.io/max-replica":        "3",
			},
			want: []string{
				`qscale.io/max-replica: unknown annotation (did you mean "qscale.io/max-replicas"?)`,
				`qscale.io/max-replicas: must be a whole number of at least 1, got "many"`,
				`qscale.io/min-replicas: must be a whole number of at least 0, got "-1"`,
				`qscale.io/paused: must be true or false, got "yes"`,
				`qscale.io/polling-interval: must be a duration of at least 1s such as 30s or 5m, or a whole number of seconds, got "10 seconds"`,
				`qscale.io/triggers: [0].name: "Orders" is not a DNS label`,
				`qscale.io/triggers: [2].name: "x" is also the name of trigger 1`,
			},
		},
		{
			name: "qscale's own status is no configuration",
			ann:  map[string]string{spec.AnnotationTriggers: kafkaTrigger, spec.AnnotationStatus: `{"ready":false}`},
			spec: &spec.Spec{
				Triggers: []spec.TriggerSpec{{Type: "kafka", Name: "orders", Metadata: spec.Metadata{
					"bootstrapServers": "k:9092", "consumerGroup": "g", "topic": "orders", "lagThreshold": "50"}}},
				MinReplicas: 1, MaxReplicas: 100, PollingInterval: 10 * time.Second, CooldownPeriod: 5 * time.Minute, FallbackFailures: 3,
			},
		},
		{name: "max below min", ann: map[string]string{spec.AnnotationTriggers: kafkaTrigger, spec.AnnotationMinReplicas: "5", spec.AnnotationMaxReplicas: "3"},
			want: []string{"qscale.io/max-replicas: must be at least min-replicas (5), got 3"}},
		{name: "triggers not a list", ann: map[string]string{spec.AnnotationTriggers: "type: kafka"},
			want: []string{"qscale.io/triggers: must be a YAML or JSON list of triggers"}},
		{name: "unknown trigger field names the trigger", ann: map[string]string{spec.AnnotationTriggers: "- type: kafka\n  metdata: {}\n"},
			want: []string{`qscale.io/triggers: [0] (kafka-0).metdata: unknown field: a trigger has type, name, metadata, authenticationRef, metricType and useCachedMetrics (did you mean "metadata"?)`}},
		{name: "nested metadata value", ann: map[string]string{spec.AnnotationTriggers: "- type: kafka\n  metadata:\n    topic: [a, b]\n"},
			want: []string{"qscale.io/triggers: [0] (kafka-0).metadata: topic: must be a string, number or boolean"}},
		{name: "duplicate key in the list", ann: map[string]string{spec.AnnotationTriggers: "- type: kafka\n  type: rabbitmq\n"},
			want: []string{`qscale.io/triggers: must be a YAML or JSON list of triggers: yaml: unmarshal errors: line 2: key "type" already set in map`}},
		{name: "KEDA's integer seconds", ann: map[string]string{spec.AnnotationTriggers: kafkaTrigger, spec.AnnotationPollingInterval: "30", spec.AnnotationCooldownPeriod: "300"},
			spec: &spec.Spec{
				Triggers: []spec.TriggerSpec{{Type: "kafka", Name: "orders", Metadata: spec.Metadata{
					"bootstrapServers": "k:9092", "consumerGroup": "g", "topic": "orders", "lagThreshold": "50"}}},
				MinReplicas: 1, MaxReplicas: 100, PollingInterval: 30 * time.Second, CooldownPeriod: 5 * time.Minute, FallbackFailures: 3,
			}},
		{name: "integer seconds below the least", ann: map[string]string{spec.AnnotationTriggers: kafkaTrigger, spec.AnnotationPollingInterval: "0", spec.AnnotationCooldownPeriod: "-1"},
			want: []string{
				`qscale.io/cooldown-period: must be a duration of at least 0s such as 30s or 5m, or a whole number of seconds, got "-1"`,
				`qscale.io/polling-interval: must be a duration of at least 1s such as 30s or 5m, or a whole number of seconds, got "0"`,
			}},
		{name: "seconds must be whole", ann: map[string]string{spec.AnnotationTriggers: kafkaTrigger, spec.AnnotationPollingInterval: "1.5"},
			want: []string{`qscale.io/polling-interval: must be a duration of at least 1s such as 30s or 5m, or a whole number of seconds, got "1.5"`}},
		{name: "seconds too many for a duration", ann: map[string]string{spec.AnnotationTriggers: kafkaTrigger, spec.AnnotationCooldownPeriod: "9300000000000"},
			want: []string{`qscale.io/cooldown-period: must be a duration`}},
		{name: "empty list", ann: map[string]string{spec.AnnotationTriggers: "[]"}, want: []string{"qscale.io/triggers: lists no trigger"}},
		{name: "missing type", ann: map[string]string{spec.AnnotationTriggers: "- name: a\n"}, want: []string{"qscale.io/triggers: [0].type: is required"}},
		{name: "bad behavior", ann: map[string]string{spec.AnnotationTriggers: kafkaTrigger, spec.AnnotationHPABehavior: "scaleUp: {policies: 3}"},
			want: []string{"qscale.io/hpa-behavior: not a HorizontalPodAutoscalerBehavior"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := spec.ParseSpec(tt.ann)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if !reflect.DeepEqual(s, tt.spec) {
					t.Errorf("parsed\n%+v\nwant\n%+v", s, tt.spec)
				}
				return
			}
			checkProblems(t, err, tt.want)
		})
	}
}

// The digest of a workload's configuration changes with any configuring annotation, and with
// nothing else: not with qscale's status, nor with another tool's annotation.
func TestConfigDigest(t *testing.T) {
	base := map[string]string{spec.AnnotationTriggers: kafkaTrigger, spec.AnnotationMaxReplicas: "7"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for bk, bv := range base {
			m[bk] = bv
		}
		m[k] = v
		return m
	}
	tests := []struct {
		name string
		ann  map[string]string
		same bool
	}{
		{name: "the same annotations", ann: with(spec.AnnotationMaxReplicas, "7"), same: true},
		{name: "a status", ann: with(spec.AnnotationStatus, `{"ready":true}`), same: true},
		{name: "another tool's annotation", ann: with("deployment.kubernetes.io/revision", "3"), same: true},
		{name: "an edited value", ann: with(spec.AnnotationMaxReplicas, "8")},
		{name: "one more annotation", ann: with(spec.AnnotationPaused, "true")},
		{name: "an unknown qscale.io annotation", ann: with("qscale.io/max-replica", "8")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if same := spec.ConfigDigest(tt.ann) == spec.ConfigDigest(base); same != tt.same {
				t.Errorf("same digest %t, want %t", same, tt.same)
			}
		})
	}
}

// Policy copies what the decision reads, and takes the HPA's tolerances from hpa-behavior.
func TestSpecPolicy(t *testing.T) {
	two := int32(2)
	tests := []struct {
		name string
		ann  map[string]string
		want policy.Spec
	}{
		{name: "defaults", ann: map[string]string{spec.AnnotationTriggers: kafkaTrigger},
			want: policy.Spec{MinReplicas: 1, MaxReplicas: 100, PollingInterval: 10 * time.Second, CooldownPeriod: 5 * time.Minute,
				FallbackFailures: 3, ScaleUpTolerance: policy.DefaultTolerance, ScaleDownTolerance: policy.DefaultTolerance}},
		{name: "every field; tolerances from hpa-behavior", ann: map[string]string{
			spec.AnnotationTriggers: kafkaTrigger, spec.AnnotationMinReplicas: "0", spec.AnnotationMaxReplicas: "12",
			spec.AnnotationPollingInterval: "2s", spec.AnnotationCooldownPeriod: "30s", spec.AnnotationFallbackReplicas: "4",
			spec.AnnotationFallbackFailures: "2", spec.AnnotationPaused: "true", spec.AnnotationPausedReplicas: "2",
			spec.AnnotationHPABehavior: "scaleUp: {tolerance: '0'}\nscaleDown: {tolerance: '0.05'}\n",
		}, want: policy.Spec{MinReplicas: 0, MaxReplicas: 12, PollingInterval: 2 * time.Second, CooldownPeriod: 30 * time.Second,
			FallbackReplicas: 4, FallbackFailures: 2, Paused: true, PausedReplicas: &two, ScaleUpTolerance: 0, ScaleDownTolerance: 0.05}},
		{name: "hpa-behavior without tolerances", ann: map[string]string{spec.AnnotationTriggers: kafkaTrigger,
			spec.AnnotationHPABehavior: "scaleDown: {stabilizationWindowSeconds: 0}"},
			want: policy.Spec{MinReplicas: 1, MaxReplicas: 100, PollingInterval: 10 * time.Second, CooldownPeriod: 5 * time.Minute,
				FallbackFailures: 3, ScaleUpTolerance: policy.DefaultTolerance, ScaleDownTolerance: policy.DefaultTolerance}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := spec.ParseSpec(tt.ann)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Policy(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Policy() =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// checkProblems checks that err is an *Error with exactly the wanted problems, in order.
func checkProblems(t *testing.T, err error, want []string) {
	t.Helper()
	var se *spec.Error
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want an *Error", err)
	}
	var got []string
	for _, p := range se.Problems {
		got = append(got, p.String())
	}
	if len(got) != len(want) {
		t.Fatalf("problems:\n%s\nwant %d", strings.Join(got, "\n"), len(want))
	}
	for i, w := range want {
		if !strings.Contains(got[i], w) {
			t.Errorf("problem %d = %q, want %q", i, got[i], w)
		}
	}
}

var registry = sources.Registry{"kafka": kafka.Kind}

func TestCompile(t *testing.T) {
	withAuth := "- type: kafka\n  name: orders\n  metadata: {bootstrapServers: 'k:9092', consumerGroup: g, topic: t, sasl: plain, username: u}\n  authenticationRef: {name: creds}\n"
	tests := []struct {
		name    string
		trig    string
		secrets spec.SecretLookup
		want    []string
	}{
		{name: "valid without a Secret", trig: kafkaTrigger},
		{name: "password from the Secret", trig: withAuth, secrets: secretsOf(map[string]string{"password": "pw"})},
		{name: "missing Secret", trig: withAuth, secrets: secretsOf(nil),
			want: []string{`qscale.io/triggers: [0] (orders).authenticationRef.name: Secret "creds" does not exist`}},
		{name: "Secret without the password", trig: withAuth, secrets: secretsOf(map[string]string{}),
			want: []string{"qscale.io/triggers: [0] (orders).metadata.password: is required when sasl is plain"}},
		{name: "offline: a Secret the check cannot see may hold the password", trig: withAuth,
			secrets: func(string) (map[string]string, error) { return nil, spec.ErrSecretUnavailable }},
		{name: "bad parameters named with trigger and field", trig: "- type: kafka\n  name: orders\n  metadata: {bootstrapServers: 'k:9092', lagThreshold: 0}\n",
			want: []string{"[0] (orders).metadata.consumerGroup: is required", "[0] (orders).metadata.lagThreshold: must be greater than 0"}},
		{name: "unknown type", trig: "- type: sqs\n", want: []string{`qscale.io/triggers: [0] (sqs-0).type: unknown trigger type "sqs" (known: kafka)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := spec.ParseSpec(map[string]string{spec.AnnotationTriggers: tt.trig})
			if err != nil {
				t.Fatal(err)
			}
			if tt.secrets == nil {
				tt.secrets = secretsOf(nil)
			}
			trs, err := s.Compile(registry, tt.secrets)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if len(trs) != len(s.Triggers) && !strings.HasPrefix(tt.name, "offline") {
					t.Fatalf("compiled %d triggers of %d", len(trs), len(s.Triggers))
				}
				return
			}
			checkProblems(t, err, tt.want)
			if strings.Contains(err.Error(), "pw") {
				t.Errorf("error reveals the Secret: %v", err)
			}
		})
	}
}

// A secretTargetRef mapping supplies one parameter from one key of a Secret, over the keys
// of the Secret that name names; every Secret it names is looked up once.
func TestCompileSecretTargetRef(t *testing.T) {
	const trig = "- type: kafka\n  name: orders\n  metadata: {bootstrapServers: 'k:9092', consumerGroup: g, topic: t, sasl: plain}\n  authenticationRef:\n"
	const mapped = "    secretTargetRef:\n    - {parameter: username, name: kafka-user, key: user}\n    - {parameter: password, name: kafka-secrets, key: sasl-password}\n"
	inCluster := map[string]map[string]string{
		"kafka-user":    {"user": "orders"},
		"kafka-secrets": {"sasl-password": "pw", "password": "not this one"},
		"creds":         {"username": "from-creds", "password": "old"},
	}
	tests := []struct {
		name    string
		ref     string
		secrets map[string]map[string]string // by name; nil: the lookup cannot see Secrets
		want    []string                     // problems; none: the trigger compiles
		looked  []string                     // the Secrets looked up, in order
	}{
		{name: "every parameter from a mapping", ref: mapped, secrets: inCluster, looked: []string{"kafka-user", "kafka-secrets"}},
		{name: "a mapping overrides the named Secret's key", ref: "    name: creds\n    secretTargetRef: [{parameter: password, name: kafka-secrets, key: sasl-password}]\n",
			secrets: inCluster, looked: []string{"creds", "kafka-secrets"}},
		{name: "one Secret behind two mappings is looked up once",
			ref:     "    secretTargetRef:\n    - {parameter: username, name: kafka-secrets, key: password}\n    - {parameter: password, name: kafka-secrets, key: sasl-password}\n",
			secrets: inCluster, looked: []string{"kafka-secrets"}},
		{name: "a missing mapped Secret", ref: mapped, secrets: map[string]map[string]string{"kafka-user": {"user": "orders"}},
			want:   []string{`[0] (orders).authenticationRef.secretTargetRef[1].name: Secret "kafka-secrets" does not exist in the workload's namespace`},
			looked: []string{"kafka-user", "kafka-secrets"}},
		{name: "a missing key", ref: mapped, secrets: map[string]map[string]string{"kafka-user": {"user": "orders"}, "kafka-secrets": {"password": "pw"}},
			want:   []string{`[0] (orders).authenticationRef.secretTargetRef[1].key: Secret "kafka-secrets" has no key "sasl-password"`},
			looked: []string{"kafka-user", "kafka-secrets"}},
		{name: "a missing named Secret and a missing mapped one, both told",
			ref: "    name: creds\n    secretTargetRef: [{parameter: password, name: kafka-secrets, key: sasl-password}]\n", secrets: map[string]map[string]string{},
			want: []string{
				`[0] (orders).authenticationRef.name: Secret "creds" does not exist`,
				`[0] (orders).authenticationRef.secretTargetRef[0].name: Secret "kafka-secrets" does not exist`,
			},
			looked: []string{"creds", "kafka-secrets"}},
		{name: "a parameter the trigger type does not have", ref: mapped + "    - {parameter: passwrod, name: kafka-secrets, key: sasl-password}\n", secrets: inCluster,
			want:   []string{`[0] (orders).authenticationRef.secretTargetRef[2].parameter: "passwrod" is not a parameter of a kafka trigger (did you mean "password"?)`},
			looked: []string{"kafka-user", "kafka-secrets"}},
		{name: "a mapped key left empty counts as not set", ref: mapped, secrets: map[string]map[string]string{"kafka-user": {"user": "orders"}, "kafka-secrets": {"sasl-password": ""}},
			want:   []string{"[0] (orders).metadata.password: is required when sasl is plain"},
			looked: []string{"kafka-user", "kafka-secrets"}},
		{name: "offline: mapped Secrets the check cannot see may hold their parameters", ref: mapped,
			looked: []string{"kafka-user", "kafka-secrets"}},
		{name: "an incomplete mapping, which ParseSpec reports, is not looked up", ref: mapped + "    - {parameter: ca, name: tls}\n", secrets: inCluster,
			looked: []string{"kafka-user", "kafka-secrets"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := spec.ParseSpec(map[string]string{spec.AnnotationTriggers: trig + tt.ref})
			var looked []string
			trs, err := s.Compile(registry, func(name string) (map[string]string, error) {
				looked = append(looked, name)
				if tt.secrets == nil {
					return nil, spec.ErrSecretUnavailable
				}
				data, ok := tt.secrets[name]
				if !ok {
					return nil, spec.ErrSecretNotFound
				}
				return data, nil
			})
			if !reflect.DeepEqual(looked, tt.looked) {
				t.Errorf("looked up %q, want %q", looked, tt.looked)
			}
			if len(tt.want) > 0 {
				checkProblems(t, err, tt.want)
				if strings.Contains(err.Error(), "pw") {
					t.Errorf("error reveals the Secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if len(trs) != 1 && tt.secrets != nil {
				t.Fatalf("compiled %d triggers, want 1", len(trs))
			}
		})
	}
	if inCluster["kafka-secrets"]["password"] != "not this one" || len(inCluster["creds"]) != 2 {
		t.Error("Compile changed a Secret's data as the lookup returned it")
	}
}

// Parameters mapped from Secrets make the trigger they compile to: a rotated key makes
// another trigger, as a rotated key of the named Secret does.
func TestCompileSecretTargetRefValues(t *testing.T) {
	ann := map[string]string{spec.AnnotationTriggers: "- type: kafka\n  metadata: {bootstrapServers: 'k:9092', consumerGroup: g, sasl: plain, username: u}\n" +
		"  authenticationRef:\n    name: creds\n    secretTargetRef: [{parameter: password, name: kafka-secrets, key: sasl-password}]\n"}
	compile := func(password string) sources.Trigger {
		t.Helper()
		_, trs, err := spec.Load(ann, registry, func(name string) (map[string]string, error) {
			if name == "creds" {
				return map[string]string{"password": "overridden"}, nil
			}
			return map[string]string{"sasl-password": password}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return trs[0]
	}
	if a, b := compile("pw"), compile("pw"); !a.Equal(b) {
		t.Error("the same Secrets made different triggers")
	}
	if a, b := compile("pw"), compile("rotated"); a.Equal(b) {
		t.Error("a rotated mapped key made the same trigger")
	}
}

// secretsOf looks up one Secret, "creds", with data; nil data means it does not exist.
func secretsOf(data map[string]string) spec.SecretLookup {
	return func(name string) (map[string]string, error) {
		if data == nil || name != "creds" {
			return nil, spec.ErrSecretNotFound
		}
		return data, nil
	}
}

// FuzzParseSpec checks that no annotation value crashes the parser and that every rejection
// is an *Error whose problems all name an annotation.
func FuzzParseSpec(f *testing.F) {
	f.Add(kafkaTrigger, "1", "10", "10s", "")
	f.Add("[{\"type\":\"kafka\",\"metadata\":{\"a\":1}}]", "0", "x", "-1s", "scaleUp: {}")
	f.Add("- type: kafka\n  name: a\n- type: kafka\n  name: a", "5", "3", "1h", "scaleDown: [1]")
	f.Fuzz(func(t *testing.T, triggers, minR, maxR, interval, behavior string) {
		ann := map[string]string{
			spec.AnnotationTriggers: triggers, spec.AnnotationMinReplicas: minR,
			spec.AnnotationMaxReplicas: maxR, spec.AnnotationPollingInterval: interval,
			spec.AnnotationHPABehavior: behavior,
		}
		s, err := spec.ParseSpec(ann)
		if err != nil {
			var se *spec.Error
			if !errors.As(err, &se) || len(se.Problems) == 0 {
				t.Fatalf("error %v is not an Error with problems", err)
			}
			for _, p := range se.Problems {
				if !strings.HasPrefix(p.Annotation, "qscale.io/") {
					t.Fatalf("problem without an annotation: %+v", p)
				}
			}
			return
		}
		if s.MaxReplicas < s.MinReplicas || len(s.Triggers) == 0 || s.PollingInterval < time.Second {
			t.Fatalf("accepted an invalid spec: %+v", s)
		}
		_, _ = s.Compile(registry, func(string) (map[string]string, error) { return nil, spec.ErrSecretUnavailable })
	})
}
