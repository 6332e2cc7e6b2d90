package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/qscale/qscale/metricsapi"
	"github.com/qscale/qscale/scaler/store"
)

func TestRunForwardFlags(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		wantURL     string
		wantTimeout time.Duration
		wantErr     string
	}{
		{name: "off by default", wantTimeout: 10 * time.Second},
		{name: "to KEDA's metrics server", args: []string{"--forward-external-metrics=https://keda-operator-metrics-apiserver.keda.svc:443", "--forward-ca-file=/etc/keda/ca.crt", "--forward-timeout=5s"},
			wantURL: "https://keda-operator-metrics-apiserver.keda.svc:443", wantTimeout: 5 * time.Second},
		{name: "without verification", args: []string{"--forward-external-metrics=https://keda:6443", "--forward-insecure-skip-tls-verify"}, wantURL: "https://keda:6443", wantTimeout: 10 * time.Second},
		{name: "plain http", args: []string{"--forward-external-metrics=http://keda:8080"}, wantErr: "--forward-external-metrics: \"http://keda:8080\": the scheme must be https"},
		{name: "a CA and no verification", args: []string{"--forward-external-metrics=https://keda", "--forward-ca-file=ca.crt", "--forward-insecure-skip-tls-verify"}, wantErr: "exclude each other"},
		{name: "a CA and no URL", args: []string{"--forward-ca-file=ca.crt"}, wantErr: "need --forward-external-metrics"},
		{name: "a zero timeout", args: []string{"--forward-external-metrics=https://keda", "--forward-timeout=0s"}, wantErr: "--forward-timeout 0s must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, o := newRunFlags(io.Discard)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := o.forward.validate()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				var stdout, stderr bytes.Buffer
				if code := run(append([]string{"run"}, tt.args...), nil, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tt.wantErr) {
					t.Fatalf("qscale run: code %d, stderr %q; want 2 and %q", code, stderr.String(), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := o.forward.parsed; (got == nil && tt.wantURL != "") || (got != nil && got.String() != tt.wantURL) {
				t.Errorf("URL %v, want %q", got, tt.wantURL)
			}
			if o.forward.timeout != tt.wantTimeout {
				t.Errorf("timeout %s, want %s", o.forward.timeout, tt.wantTimeout)
			}
		})
	}
}

// The forwarder tells qscale's metrics from the other adapter's by their names' prefix.
func TestOwnMetricsHaveTheForwardersPrefix(t *testing.T) {
	if name := store.MetricName("orders"); !strings.HasPrefix(name, metricsapi.OwnMetricPrefix) {
		t.Fatalf("metric %q does not begin with %q: the forwarder would send it to the other adapter", name, metricsapi.OwnMetricPrefix)
	}
}
