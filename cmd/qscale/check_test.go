package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qscale/qscale/scaler/spec"
)

// leaked is a password written where it must not be: no output may show it.
const leaked = "s3cret"

// Manifests of the check tests, written under a temporary directory by writeFiles.
var checkFiles = map[string]string{
	"app/config.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data:
  app.properties: |
    plain text, which is not base64
---
apiVersion: v1
kind: Service
metadata: {name: orders, namespace: shop}
spec: {ports: [{port: 80}]}
`,
	"app/deploy/orders.yml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: orders
  namespace: shop
  annotations:
    qscale.io/polling-interval: "30"
    qscale.io/triggers: |
      - type: kafka
        metricType: AverageValue
        useCachedMetrics: true
        metadata: {bootstrapServers: "k:9092", consumerGroup: g, topic: orders, sasl: plain, username: u}
        authenticationRef: {name: kafka-creds}
`,
	"app/kafka.json":  `{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kafka-creds", "namespace": "shop"}, "data": {"password": "czNjcmV0"}}`,
	"app/notes.txt":   "kind: [ this is not read",
	"app/.git/x.yaml": "kind: [ nor is this",
	"keda.yaml": `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: orders, namespace: shop}
spec:
  scaleTargetRef: {name: orders}
  triggers: [{type: kafka, metadata: {bootstrapServers: "k:9092", consumerGroup: g, topic: orders}}]
`,
	"jobs.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: jobs
  namespace: shop
  annotations:
    qscale.io/max-replicas: "0"
    qscale.io/triggers: |
      - type: rabbitmq
        metadata: {host: "amqp://u:` + leaked + `@rabbit:5672/", queueName: jobs, value: "-1", queueNmae: x}
      - type: kafka
        metadata: {bootstrapServers: "k:9092", consumerGroup: g, limitToPartitionsWithLag: "true"}
`,
	"empty/README.md": "no manifests here",
}

// writeFiles writes files, by path, under a new temporary directory and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCheck(t *testing.T) {
	dir := writeFiles(t, checkFiles)
	at := func(name string) string { return filepath.Join(dir, name) }
	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantCode   int
		wantStdout []string // lines of standard output, each contained in one line, in order
		wantStderr string
	}{
		{name: "a ConfigMap with plain data and a Service are skipped", args: []string{"-f", at("app/config.yaml")}, wantCode: 0,
			wantStdout: []string{"0 workload(s) checked, 0 with errors, 0 warning(s); 0 Secret(s) read; skipped 1 ConfigMap, 1 Service"}},
		{name: "a ScaledObject is a warning, and no error", args: []string{"-f", at("keda.yaml")}, wantCode: 0,
			wantStdout: []string{
				at("keda.yaml") + `: ScaledObject shop/orders: warning: a KEDA ScaledObject, which qscale does not read: convert it: put its triggers on the Deployment "orders"`,
				"0 workload(s) checked, 0 with errors, 1 warning(s)",
			}},
		{name: "several -f: the Secret of one file serves the workload of another", args: []string{"-f", at("app/kafka.json"), "-f", at("app/deploy/orders.yml")}, wantCode: 0,
			wantStdout: []string{at("app/deploy/orders.yml") + ": Deployment shop/orders: ok", "1 workload(s) checked, 0 with errors, 0 warning(s); 1 Secret(s) read"}},
		{name: "without the Secret, what it supplies is not checked", args: []string{"-f", at("app/deploy/orders.yml")}, wantCode: 0,
			wantStdout: []string{
				at("app/deploy/orders.yml") + ": Deployment shop/orders: ok",
				at("app/deploy/orders.yml") + `: Deployment shop/orders: not checked: Secret "kafka-creds" is not in the input`,
			}},
		{name: "a directory, recursively, manifests only", args: []string{"-f", at("app")}, wantCode: 0,
			wantStdout: []string{at("app/deploy/orders.yml") + ": Deployment shop/orders: ok", "1 workload(s) checked, 0 with errors, 0 warning(s); 1 Secret(s) read; skipped 1 ConfigMap, 1 Service"}},
		{name: "a file given twice is read once", args: []string{"-f", at("app"), "-f", at("app/deploy/orders.yml")}, wantCode: 0,
			wantStdout: []string{"1 workload(s) checked"}},
		{name: "standard input beside files", args: []string{"-f", at("app/kafka.json"), "-f", "-"}, stdin: checkFiles["app/deploy/orders.yml"], wantCode: 0,
			wantStdout: []string{"<stdin>: Deployment shop/orders: ok", "1 workload(s) checked, 0 with errors, 0 warning(s); 1 Secret(s) read"}},
		{name: "a password in a URL hides no other error", args: []string{"-f", at("jobs.yaml")}, wantCode: 1,
			wantStdout: []string{
				`Deployment shop/jobs: qscale.io/max-replicas: must be a whole number of at least 1, got "0"`,
				`Deployment shop/jobs: qscale.io/triggers: [0] (rabbitmq-0).metadata.value: must be greater than 0, got "-1"`,
				`Deployment shop/jobs: qscale.io/triggers: [0] (rabbitmq-0).metadata.queueNmae: unknown parameter (did you mean "queueName"?)`,
				"Deployment shop/jobs: qscale.io/triggers: [0] (rabbitmq-0).metadata.host: holds a password",
				"Deployment shop/jobs: qscale.io/triggers: [1] (kafka-1).metadata.limitToPartitionsWithLag: needs topic",
				"1 workload(s) checked, 1 with errors",
			}},
		{name: "--help", args: []string{"--help"}, wantCode: 0, wantStderr: "usage: qscale check -f FILE|DIR|- [-f ...] [-o text|json]"},
		{name: "-h", args: []string{"-h"}, wantCode: 0, wantStderr: "-o, --output string"},
		{name: "an unknown flag", args: []string{"-f", at("keda.yaml"), "--strict"}, wantCode: 2, wantStderr: "unknown flag: --strict"},
		{name: "an unknown output", args: []string{"-f", at("keda.yaml"), "-o", "yaml"}, wantCode: 2, wantStderr: `--output must be text or json, got "yaml"`},
		{name: "a file that does not exist", args: []string{"-f", at("nope.yaml")}, wantCode: 2, wantStderr: "no such file"},
		{name: "a directory without manifests", args: []string{"-f", at("empty")}, wantCode: 2, wantStderr: "no .yaml, .yml or .json file in the directory"},
		{name: "standard input twice", args: []string{"-f", "-", "-f", "-"}, wantCode: 2, wantStderr: "given twice"},
		{name: "an argument without -f", args: []string{at("keda.yaml")}, wantCode: 2, wantStderr: "name manifests with -f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"check"}, tt.args...), strings.NewReader(tt.stdin), &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Fatalf("code %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
			}
			checkLines(t, stdout.String(), tt.wantStdout)
			if strings.Contains(stdout.String()+stderr.String(), leaked) {
				t.Error("output reveals a Secret")
			}
		})
	}
}

// checkLines checks that each wanted string is in a line of out, in order.
func checkLines(t *testing.T, out string, want []string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	i := 0
	for _, w := range want {
		for i < len(lines) && !strings.Contains(lines[i], w) {
			i++
		}
		if i == len(lines) {
			t.Fatalf("output lacks %q (in this order):\n%s", w, out)
		}
	}
}

func TestCheckJSON(t *testing.T) {
	dir := writeFiles(t, checkFiles)
	var stdout, stderr bytes.Buffer
	code := run([]string{"check", "-o", "json", "-f", dir}, nil, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, stderr.String())
	}
	if strings.Contains(stdout.String(), leaked) {
		t.Error("output reveals a Secret")
	}
	var r spec.Report
	dec := json.NewDecoder(&stdout)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("not a report: %v", err)
	}
	type counts struct{ findings, checked, withErrors, warnings, secrets, configMaps, services int }
	got := counts{len(r.Findings), r.Checked, r.WithErrors, r.Warnings, r.Secrets, r.Skipped["ConfigMap"], r.Skipped["Service"]}
	if want := (counts{3, 2, 1, 1, 1, 1, 1}); got != want {
		t.Errorf("counts %+v, want %+v", got, want)
	}
	// A finding as the JSON gives it: where it is, its status, how many messages of each kind,
	// and the first error.
	type finding struct {
		file, status                 string
		document                     int
		errors, warnings, notChecked int
		first                        spec.Problem
	}
	summarize := func(f spec.Finding) finding {
		s := finding{file: f.File, status: f.Status, document: f.Document, errors: len(f.Errors), warnings: len(f.Warnings), notChecked: len(f.NotChecked)}
		if len(f.Errors) > 0 {
			s.first = f.Errors[0]
		}
		return s
	}
	want := map[string]finding{
		"Deployment shop/jobs": {file: filepath.Join(dir, "jobs.yaml"), status: spec.StatusError, document: 1, errors: 5,
			first: spec.Problem{Annotation: spec.AnnotationMaxReplicas, Message: `must be a whole number of at least 1, got "0"`}},
		"Deployment shop/orders":   {file: filepath.Join(dir, "app/deploy/orders.yml"), status: spec.StatusOK, document: 1},
		"ScaledObject shop/orders": {file: filepath.Join(dir, "keda.yaml"), status: spec.StatusWarning, document: 1, warnings: 1},
	}
	for _, f := range r.Findings {
		if got := summarize(f); got != want[f.Object()] {
			t.Errorf("%s: %+v, want %+v", f.Object(), got, want[f.Object()])
		}
	}
}
