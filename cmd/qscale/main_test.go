package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const manifest = `
apiVersion: v1
kind: Secret
metadata: {name: kafka-creds, namespace: shop}
stringData: {password: s3cret}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: orders
  namespace: shop
  annotations:
    qscale.io/triggers: |
      - type: kafka
        name: orders
        metadata: {bootstrapServers: "k:9092", consumerGroup: g, topic: orders, sasl: plain, username: u}
        authenticationRef: {name: kafka-creds}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: payments
  namespace: shop
  annotations:
    qscale.io/max-replicas: "0"
    qscale.io/triggers: |
      - type: kafka
        metadata: {bootstrapServers: "k:9092", lagThreshold: "-5"}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: ledger
  annotations:
    qscale.io/triggers: |
      - type: kafka
        metadata: {bootstrapServers: "k:9092", consumerGroup: g, sasl: plain, username: u}
        authenticationRef: {name: elsewhere}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: plain, namespace: shop}
`

func TestRun(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "manifest.yaml")
	if err := os.WriteFile(file, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte(strings.Split(manifest, "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: payments")[0]), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantCode   int
		wantStdout []string
		wantStderr string
	}{
		{name: "version", args: []string{"version"}, wantCode: 0, wantStdout: []string{"qscale dev"}},
		{name: "no command", args: nil, wantCode: 2, wantStderr: "usage: qscale"},
		{name: "unknown command", args: []string{"scale"}, wantCode: 2, wantStderr: `unknown command "scale"`},
		{name: "check without a file", args: []string{"check"}, wantCode: 2, wantStderr: "-f FILE is required"},
		{name: "check finds every error", args: []string{"check", "-f", file}, wantCode: 1, wantStdout: []string{
			"Deployment shop/orders: ok",
			"Deployment shop/payments: qscale.io/max-replicas: must be a whole number of at least 1",
			"Deployment shop/payments: qscale.io/triggers: [0] (kafka-0).metadata.consumerGroup: is required",
			"Deployment shop/payments: qscale.io/triggers: [0] (kafka-0).metadata.lagThreshold: must be greater than 0",
			"StatefulSet default/ledger: ok",
			`StatefulSet default/ledger: not checked: Secret "elsewhere" is not in the input`,
			"3 workload(s) checked, 1 with errors, 0 warning(s); 1 Secret(s) read; skipped 1 Deployment without qscale.io/triggers",
		}},
		{name: "check a valid manifest", args: []string{"check", "-f", good}, wantCode: 0, wantStdout: []string{"1 workload(s) checked, 0 with errors"}},
		{name: "check reads standard input", args: []string{"check", "-f", "-"}, stdin: manifest, wantCode: 1, wantStdout: []string{"3 workload(s) checked, 1 with errors"}},
		{name: "check a file that is not YAML", args: []string{"check", "-f", "-"}, stdin: "kind: [", wantCode: 1, wantStdout: []string{"<stdin>: document 1: not YAML or JSON"}},
		{name: "run with a bad flag", args: []string{"run", "--no-such-flag"}, wantCode: 2, wantStderr: "unknown flag"},
		{name: "run sharing without leader election", args: []string{"run", "--peer-address", "10.0.0.7"}, wantCode: 2, wantStderr: "--peer-address needs --leader-elect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, strings.NewReader(tt.stdin), &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Fatalf("code %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
			}
			for _, w := range tt.wantStdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout.String())
				}
			}
			if strings.Contains(stdout.String()+stderr.String(), "s3cret") {
				t.Error("output reveals a Secret")
			}
		})
	}
}
