package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qscale/qscale/scaler/keda"
)

// Manifests of the import-keda tests, written under a temporary directory.
var importFiles = map[string]string{
	"keda/orders.yaml": `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: orders, namespace: shop}
spec:
  scaleTargetRef: {name: orders}
  maxReplicaCount: 12
  triggers:
  - type: kafka
    metadata: {bootstrapServers: "kafka:9092", consumerGroup: orders, topic: orders, sasl: plain, username: orders}
    authenticationRef: {name: kafka-auth}
`,
	"keda/auth.yaml": `apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata: {name: kafka-auth, namespace: shop}
spec:
  secretTargetRef:
  - {parameter: password, name: kafka-secrets, key: sasl-password}
`,
	"secrets.yaml": `apiVersion: v1
kind: Secret
metadata: {name: kafka-secrets, namespace: shop}
stringData: {sasl-password: ` + leaked + `}
`,
	"mixed.yaml": `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: web, namespace: shop}
spec:
  scaleTargetRef: {name: web}
  triggers:
  - {type: cpu, metricType: Utilization, metadata: {value: "60"}}
  - {type: rabbitmq, metadata: {host: "amqp://rabbit:5672/", queueName: web, mode: QueueLength, value: "10"}}
`,
	"job.yaml": `apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata: {name: batch, namespace: shop}
spec:
  triggers: [{type: rabbitmq, metadata: {queueName: batch}}]
`,
	"plain.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
`,
}

func TestImportKEDA(t *testing.T) {
	dir := writeFiles(t, importFiles)
	at := func(name string) string { return filepath.Join(dir, name) }
	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantCode   int
		wantStdout []string // lines, each contained in one line, in order
		wantStderr []string
	}{
		{name: "a directory, recursively: the TriggerAuthentication becomes secretTargetRef", args: []string{"-f", at("keda")}, wantCode: 0,
			wantStdout: []string{"# from ScaledObject shop/orders", "kind: Deployment", "qscale.io/max-replicas: \"12\"", "qscale.io/min-replicas: \"0\"",
				"- type: kafka", "secretTargetRef:", "- parameter: password", "name: kafka-secrets", "key: sasl-password", "name: orders", "namespace: shop"},
			wantStderr: []string{"keda/orders.yaml: ScaledObject shop/orders → Deployment shop/orders: converted", "1 KEDA object(s): 1 converted, 0 in part, 0 not converted"}},
		{name: "standard input beside a file", args: []string{"-f", "-", "-f", at("keda/auth.yaml")}, stdin: importFiles["keda/orders.yaml"], wantCode: 0,
			wantStdout: []string{"name: orders"}, wantStderr: []string{"<stdin>: ScaledObject shop/orders → Deployment shop/orders: converted"}},
		{name: "without its TriggerAuthentication nothing converts", args: []string{"-f", at("keda/orders.yaml")}, wantCode: 1,
			wantStderr: []string{`spec.triggers[0].authenticationRef: TriggerAuthentication "kafka-auth" is not in the input: pass it with -f`, "not converted: nothing to apply"}},
		{name: "a trigger qscale lacks: the rest is printed, and the exit status says so", args: []string{"-f", at("mixed.yaml")}, wantCode: 1,
			wantStdout: []string{"name: web"},
			wantStderr: []string{`spec.triggers[0].type: qscale has no "cpu" trigger`, "converted in part", "1 KEDA object(s): 0 converted, 1 in part"}},
		{name: "--allow-partial", args: []string{"-f", at("mixed.yaml"), "--allow-partial"}, wantCode: 0, wantStdout: []string{"name: web"}},
		{name: "--allow-partial with nothing convertible", args: []string{"-f", at("job.yaml"), "--allow-partial"}, wantCode: 0,
			wantStderr: []string{"ScaledJob shop/batch: not converted: kind: qscale scales Deployments and StatefulSets, not Jobs"}},
		{name: "a ScaledJob", args: []string{"-f", at("job.yaml")}, wantCode: 1, wantStderr: []string{"ScaledJob shop/batch: not converted"}},
		{name: "no ScaledObject", args: []string{"-f", at("plain.yaml")}, wantCode: 1, wantStderr: []string{"no KEDA ScaledObject in the input"}},
		{name: "a document that is not YAML", args: []string{"-f", "-", "--allow-partial"}, stdin: "kind: [\n", wantCode: 1, wantStderr: []string{"<stdin>: document 1: not YAML or JSON"}},
		{name: "--help", args: []string{"--help"}, wantCode: 0, wantStderr: []string{"usage: qscale import-keda -f FILE|DIR|- [-f ...] [-o yaml|json] [--allow-partial]", "--allow-partial"}},
		{name: "no -f", args: nil, wantCode: 2, wantStderr: []string{"-f FILE is required"}},
		{name: "an unknown output", args: []string{"-f", at("job.yaml"), "-o", "text"}, wantCode: 2, wantStderr: []string{`--output must be yaml or json, got "text"`}},
		{name: "an unknown flag", args: []string{"-f", at("job.yaml"), "--partial"}, wantCode: 2, wantStderr: []string{"unknown flag: --partial"}},
		{name: "a file that does not exist", args: []string{"-f", at("nope.yaml")}, wantCode: 2, wantStderr: []string{"no such file"}},
		{name: "an argument without -f", args: []string{at("job.yaml")}, wantCode: 2, wantStderr: []string{"name manifests with -f"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"import-keda"}, tt.args...), strings.NewReader(tt.stdin), &stdout, &stderr)
			if code != tt.wantCode {
				t.Fatalf("code %d, want %d; stdout %q, stderr %q", code, tt.wantCode, stdout.String(), stderr.String())
			}
			checkLines(t, stdout.String(), tt.wantStdout)
			checkLines(t, stderr.String(), tt.wantStderr)
			if strings.Contains(stdout.String()+stderr.String(), leaked) {
				t.Error("output reveals a Secret")
			}
		})
	}
}

// What import-keda prints, qscale check accepts, with the Secrets the triggers read.
func TestImportKEDAThenCheck(t *testing.T) {
	dir := writeFiles(t, importFiles)
	var converted, stderr bytes.Buffer
	if code := run([]string{"import-keda", "-f", filepath.Join(dir, "keda")}, nil, &converted, &stderr); code != 0 {
		t.Fatalf("import-keda exit %d: %s", code, stderr.String())
	}
	var out bytes.Buffer
	stderr.Reset()
	code := run([]string{"check", "-f", "-", "-f", filepath.Join(dir, "secrets.yaml")}, &converted, &out, &stderr)
	if code != 0 {
		t.Fatalf("check exit %d: %s %s", code, out.String(), stderr.String())
	}
	checkLines(t, out.String(), []string{"<stdin>: Deployment shop/orders: ok", "1 workload(s) checked, 0 with errors, 0 warning(s); 1 Secret(s) read"})
	if strings.Contains(out.String(), "not checked") {
		t.Errorf("the mapped Secret was not read: %s", out.String())
	}
}

func TestImportKEDAJSON(t *testing.T) {
	dir := writeFiles(t, importFiles)
	var stdout, stderr bytes.Buffer
	code := run([]string{"import-keda", "-o", "json", "-f", dir}, nil, &stdout, &stderr)
	if code != 1 || stderr.Len() != 0 {
		t.Fatalf("exit %d, stderr %q; want 1 and nothing", code, stderr.String())
	}
	var r keda.Result
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("not a report: %v", err)
	}
	got := map[string]string{}
	for _, c := range r.Conversions {
		got[c.Kind+" "+c.Name] = c.Status
		if (c.Object == nil) != (c.Status == keda.StatusFailed) {
			t.Errorf("%s %s: status %s with object %v", c.Kind, c.Name, c.Status, c.Object)
		}
	}
	want := map[string]string{"ScaledObject orders": keda.StatusConverted, "ScaledObject web": keda.StatusPartial, "ScaledJob batch": keda.StatusFailed}
	if len(got) != len(want) {
		t.Fatalf("conversions %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s, want %s", k, got[k], v)
		}
	}
}
