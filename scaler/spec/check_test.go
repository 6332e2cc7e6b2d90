package spec_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/qscale/qscale/scaler/spec"
	"github.com/qscale/qscale/sources"
	"github.com/qscale/qscale/sources/activemq"
	"github.com/qscale/qscale/sources/kafka"
	"github.com/qscale/qscale/sources/rabbitmq"
)

const (
	orders = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: orders
  namespace: shop
  annotations:
    qscale.io/triggers: |
      - type: kafka
        metadata: {bootstrapServers: "k:9092", consumerGroup: g, topic: orders, sasl: plain, username: u}
        authenticationRef: {name: kafka-creds}
`
	kafkaAuth = `apiVersion: v1
kind: Secret
metadata: {name: kafka-creds, namespace: shop}
stringData: {password: s3cret}
`
	configMap = `apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data:
  app.properties: |
    plain text, not base64
  retries: "3"
binaryData:
  blob: aGVsbG8=
`
	service = `apiVersion: v1
kind: Service
metadata: {name: orders, namespace: shop}
spec:
  ports: [{port: 80, targetPort: 8080}]
`
	mapped = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: mapped
  namespace: shop
  annotations:
    qscale.io/triggers: |
      - type: kafka
        metadata: {bootstrapServers: "k:9092", consumerGroup: g, topic: orders, sasl: plain}
        authenticationRef:
          secretTargetRef:
          - {parameter: username, name: kafka-user, key: user}
          - {parameter: password, name: kafka-secrets, key: sasl-password}
`
	kafkaMapped = `apiVersion: v1
kind: Secret
metadata: {name: kafka-secrets, namespace: shop}
stringData: {password: s3cret}
`
	scaledObject = `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: orders-scaler, namespace: shop}
spec:
  scaleTargetRef: {name: orders}
  pollingInterval: 30
  triggers:
  - type: kafka
    metadata: {bootstrapServers: "k:9092", consumerGroup: g, topic: orders}
`
)

// checkRegistry holds the types the manifests below use.
var checkRegistry = sources.Registry{"activemq": activemq.Kind, "kafka": kafka.Kind, "rabbitmq": rabbitmq.Kind}

type wantFinding struct {
	where  string   // file: Kind namespace/name
	status string   // spec.Status…
	says   []string // one substring per error, warning and note, in that order
}

func TestCheckManifests(t *testing.T) {
	type input struct{ name, text string }
	tests := []struct {
		name    string
		inputs  []input
		want    []wantFinding
		checked int
		secrets int
		skipped map[string]int
	}{
		{
			name:    "ConfigMaps with plain data and Services are skipped, not read",
			inputs:  []input{{"app.yaml", configMap + "---\n" + service + "---\n" + kafkaAuth + "---\n" + orders}},
			want:    []wantFinding{{where: "app.yaml: Deployment shop/orders", status: spec.StatusOK}},
			checked: 1, secrets: 1, skipped: map[string]int{"ConfigMap": 1, "Service": 1},
		},
		{
			name:    "a Secret in another file serves the workload, and is checked strictly",
			inputs:  []input{{"secrets.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: kafka-creds, namespace: shop}\ndata: {other: eA==}\n"}, {"app.yaml", orders}},
			want:    []wantFinding{{where: "app.yaml: Deployment shop/orders", status: spec.StatusError, says: []string{"[0] (kafka-0).metadata.password: is required when sasl is plain"}}},
			checked: 1, secrets: 1, skipped: map[string]int{},
		},
		{
			name:   "a Secret not in the input is not checked, and no error",
			inputs: []input{{"app.yaml", orders}},
			want: []wantFinding{{where: "app.yaml: Deployment shop/orders", status: spec.StatusOK,
				says: []string{`Secret "kafka-creds" is not in the input: the parameters it may supply were not checked`}}},
			checked: 1, skipped: map[string]int{},
		},
		{
			name:   "a Secret in another namespace is not the one named",
			inputs: []input{{"app.yaml", strings.Replace(kafkaAuth, "namespace: shop", "namespace: other", 1) + "---\n" + orders}},
			want: []wantFinding{{where: "app.yaml: Deployment shop/orders", status: spec.StatusOK,
				says: []string{`Secret "kafka-creds" is not in the input`}}},
			checked: 1, secrets: 1, skipped: map[string]int{},
		},
		{
			name:   "a Secret whose data is not base64 is a warning, and not used",
			inputs: []input{{"app.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: kafka-creds, namespace: shop}\ndata: {password: not base64!}\n---\n" + orders}},
			want: []wantFinding{
				{where: "app.yaml: Secret shop/kafka-creds", status: spec.StatusWarning,
					says: []string{"data.password is not base64 (plain text goes in stringData): the Secret is not used"}},
				{where: "app.yaml: Deployment shop/orders", status: spec.StatusOK, says: []string{`Secret "kafka-creds" is not in the input`}},
			},
			checked: 1, skipped: map[string]int{},
		},
		{
			name:   "the Secrets of secretTargetRef are read from the input, and a missing key is an error",
			inputs: []input{{"app.yaml", kafkaMapped + "---\n" + mapped}},
			want: []wantFinding{{where: "app.yaml: Deployment shop/mapped", status: spec.StatusError, says: []string{
				`[0] (kafka-0).authenticationRef.secretTargetRef[1].key: Secret "kafka-secrets" has no key "sasl-password"`,
				`Secret "kafka-user" is not in the input: the parameters it may supply were not checked`,
			}}},
			checked: 1, secrets: 1, skipped: map[string]int{},
		},
		{
			name:   "the Secrets of secretTargetRef that the input holds serve the trigger",
			inputs: []input{{"app.yaml", strings.Replace(kafkaMapped, "password:", "sasl-password:", 1) + "---\n" + mapped}},
			want: []wantFinding{{where: "app.yaml: Deployment shop/mapped", status: spec.StatusOK,
				says: []string{`Secret "kafka-user" is not in the input`}}},
			checked: 1, secrets: 1, skipped: map[string]int{},
		},
		{
			name:   "a ScaledObject is a warning that says how to convert it",
			inputs: []input{{"keda.yaml", scaledObject + "---\napiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\nmetadata: {name: auth}\n"}},
			want: []wantFinding{
				{where: "keda.yaml: ScaledObject shop/orders-scaler", status: spec.StatusWarning,
					says: []string{`a KEDA ScaledObject, which qscale does not read: convert it: put its triggers on the Deployment "orders" that it scales as the qscale.io/triggers annotation`}},
				{where: "keda.yaml: TriggerAuthentication default/auth", status: spec.StatusWarning,
					says: []string{"a KEDA TriggerAuthentication, which qscale does not read: a qscale trigger's authenticationRef reads Secrets directly: copy this object's secretTargetRef"}},
			},
			skipped: map[string]int{},
		},
		{
			name: "qscale.io annotations where qscale does not read them",
			inputs: []input{{"app.yaml", `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, annotations: {qscale.io/max-replicas: "3"}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: idle, annotations: {qscale.io/min-replicas: "0"}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: ledger}
spec:
  template:
    metadata:
      annotations:
        qscale.io/triggers: "[]"
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: plain}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: logs}
`}},
			want: []wantFinding{
				{where: "app.yaml: DaemonSet default/agent", status: spec.StatusWarning, says: []string{"qscale reads qscale.io annotations only on apps/v1 Deployments and StatefulSets; on a DaemonSet they have no effect"}},
				{where: "app.yaml: Deployment default/idle", status: spec.StatusWarning, says: []string{"has qscale.io annotations but no qscale.io/triggers"}},
				{where: "app.yaml: StatefulSet default/ledger", status: spec.StatusWarning, says: []string{"qscale.io annotations in the pod template (spec.template.metadata.annotations) have no effect"}},
			},
			skipped: map[string]int{"DaemonSet": 1, "Deployment without qscale.io/triggers": 1},
		},
		{
			name: "a List is expanded, and an unquoted annotation value is an error",
			inputs: []input{{"list.json", `{"apiVersion": "v1", "kind": "List", "items": [
				{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "plain"}},
				{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w", "annotations": {
					"qscale.io/polling-interval": 30,
					"qscale.io/triggers": "[{\"type\": \"kafka\", \"metadata\": {\"bootstrapServers\": \"k:9092\", \"consumerGroup\": \"g\", \"topic\": \"t\"}}]"}}}]}`}},
			want: []wantFinding{{where: "list.json: Deployment default/w", status: spec.StatusError,
				says: []string{`qscale.io/polling-interval: must be a string: quote the value ("30", "true")`}}},
			checked: 1, skipped: map[string]int{"ConfigMap": 1},
		},
		{
			name:   "a document that is not YAML is an error; the others are still checked",
			inputs: []input{{"a.yaml", "kind: [\n---\n" + orders}, {"b.yaml", "- just\n- a list\n"}},
			want: []wantFinding{
				{where: "a.yaml: document 1", status: spec.StatusError, says: []string{"not YAML or JSON"}},
				{where: "a.yaml: Deployment shop/orders", status: spec.StatusOK, says: []string{"not in the input"}},
				{where: "b.yaml: document 1", status: spec.StatusError, says: []string{"not a Kubernetes object"}},
			},
			checked: 1, skipped: map[string]int{},
		},
		{
			name: "a password in a URL hides no other error",
			inputs: []input{{"app.yaml", `apiVersion: apps/v1
kind: Deployment
metadata:
  name: jobs
  annotations:
    qscale.io/max-replicas: "0"
    qscale.io/polling-interval: "30"
    qscale.io/triggers: |
      - type: rabbitmq
        metricType: Value
        metadata: {host: "amqp://u:s3cret@rabbit:5672/", queueName: jobs, value: "-1", mode: QueueLength, queueLength: "5"}
      - type: kafka
        metadata: {bootstrapServers: "k:9092"}
`}},
			want: []wantFinding{{where: "app.yaml: Deployment default/jobs", status: spec.StatusError, says: []string{
				`qscale.io/max-replicas: must be a whole number of at least 1, got "0"`,
				"qscale.io/triggers: [0] (rabbitmq-0).metricType: Value is not supported",
				`qscale.io/triggers: [0] (rabbitmq-0).metadata.value: must be greater than 0, got "-1"`,
				"qscale.io/triggers: [0] (rabbitmq-0).metadata.host: holds a password",
				"qscale.io/triggers: [0] (rabbitmq-0).metadata.queueLength: is the deprecated form of mode: QueueLength with value",
				"qscale.io/triggers: [1] (kafka-1).metadata.consumerGroup: is required",
			}}},
			checked: 1, skipped: map[string]int{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var inputs []spec.Input
			for _, in := range tt.inputs {
				inputs = append(inputs, spec.Input{Name: in.name, Data: strings.NewReader(in.text)})
			}
			r, err := spec.CheckManifests(inputs, checkRegistry)
			if err != nil {
				t.Fatal(err)
			}
			checkFindings(t, r.Findings, tt.want)
			if r.Checked != tt.checked || r.Secrets != tt.secrets || !reflect.DeepEqual(r.Skipped, tt.skipped) {
				t.Errorf("checked %d, secrets %d, skipped %v; want %d, %d, %v", r.Checked, r.Secrets, r.Skipped, tt.checked, tt.secrets, tt.skipped)
			}
			if strings.Contains(strings.Join(messages(r.Findings...), "\n"), "s3cret") {
				t.Error("a finding reveals a secret")
			}
		})
	}
}

func checkFindings(t *testing.T, got []spec.Finding, want []wantFinding) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d findings, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		f := got[i]
		if where := f.File + ": " + f.Object(); where != w.where || f.Status != w.status {
			t.Errorf("finding %d is %s, %s; want %s, %s", i, where, f.Status, w.where, w.status)
		}
		says := messages(f)
		if len(says) != len(w.says) {
			t.Errorf("finding %d says\n%s\nwant %d messages", i, strings.Join(says, "\n"), len(w.says))
			continue
		}
		for j, s := range w.says {
			if !strings.Contains(says[j], s) {
				t.Errorf("finding %d message %d = %q, want %q", i, j, says[j], s)
			}
		}
	}
}

// messages lists what findings say: their errors, warnings and notes, in that order.
func messages(fs ...spec.Finding) []string {
	var out []string
	for _, f := range fs {
		for _, p := range f.Errors {
			out = append(out, p.String())
		}
		out = append(out, f.Warnings...)
		out = append(out, f.NotChecked...)
	}
	return out
}

// No manifest stops the check or makes it crash.
func FuzzCheckManifests(f *testing.F) {
	f.Add(orders + "---\n" + kafkaAuth + "---\n" + configMap)
	f.Add(scaledObject)
	f.Add(`{"kind": "List", "items": [{"kind": "Secret", "data": {"a": 1}}, 3]}`)
	// Every type, with parameters half right: Validate runs on what Decode could read.
	f.Add(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: w
  annotations:
    qscale.io/triggers: |
      - type: kafka
        metadata: {bootstrapServers: "k:x", consumerGroup: g, sasl: plain, tls: enable, cert: c, limitToPartitionsWithLag: "true", partitionLimitation: "3-1"}
      - type: rabbitmq
        metadata: {host: "amqps://u:p@r/v", protocol: amqp, mode: MessageRate, useRegex: "yes", queueName: "(", tls: enable, pageSize: "0"}
      - type: activemq
        metadata: {protocol: stomp, stompEndpoint: "a", destinationName: "q*", restAPITemplate: "{{.X", targetQueueSize: "-1"}
`)
	f.Fuzz(func(t *testing.T, manifest string) {
		r, err := spec.CheckManifests([]spec.Input{{Name: "f", Data: strings.NewReader(manifest)}}, checkRegistry)
		if err != nil {
			return // the reader failed: only I/O errors and over-long documents
		}
		for _, fd := range r.Findings {
			if fd.Status == spec.StatusError && len(fd.Errors) == 0 {
				t.Fatalf("an error finding without errors: %+v", fd)
			}
		}
	})
}
