package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/metrics/pkg/apis/external_metrics/v1beta1"
	metricsfake "k8s.io/metrics/pkg/client/external_metrics/fake"

	"github.com/qscale/qscale/scaler/spec"
	"github.com/qscale/qscale/scaler/status"
)

func TestStatusCommandLine(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-kubeconfig")
	tests := []struct {
		name       string
		argv       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "help", argv: []string{"qscale", "status", "--help"}, wantCode: 0, wantStderr: "usage: qscale status [-n NAMESPACE | -A]"},
		{name: "an unknown output", argv: []string{"qscale", "status", "-o", "table"}, wantCode: 2, wantStderr: "--output must be wide, json or yaml"},
		{name: "a namespace and all of them", argv: []string{"qscale", "status", "-n", "shop", "-A"}, wantCode: 2, wantStderr: "exclude each other"},
		{name: "an argument", argv: []string{"qscale", "status", "orders"}, wantCode: 2, wantStderr: `unexpected argument "orders"`},
		{name: "an unknown flag", argv: []string{"qscale", "status", "--watch"}, wantCode: 2, wantStderr: "unknown flag: --watch"},
		{name: "a kubeconfig that is not there", argv: []string{"qscale", "status", "--kubeconfig", missing}, wantCode: 1, wantStderr: "no-such-kubeconfig"},
		{name: "the usage lists status", argv: []string{"qscale", "help"}, wantCode: 0, wantStdout: "qscale status [-n NS | -A]"},
		{name: "as a kubectl plugin", argv: []string{"/usr/local/bin/kubectl-qscale", "status", "--help"}, wantCode: 0, wantStderr: "usage: kubectl qscale status"},
		{name: "as a kubectl plugin, without a command", argv: []string{"kubectl-qscale"}, wantCode: 2, wantStderr: "usage: kubectl qscale <command>"},
		{name: "as a kubectl plugin, any command", argv: []string{"kubectl-qscale", "version"}, wantCode: 0, wantStdout: "qscale dev"},
		{name: "by another file name, as qscale", argv: []string{"./bin/qscale-linux-amd64"}, wantCode: 2, wantStderr: "usage: qscale <command>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KUBECONFIG", missing)
			var stdout, stderr bytes.Buffer
			code := entry(tt.argv, strings.NewReader(""), &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stdout.String(), tt.wantStdout) || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Fatalf("code %d (want %d)\nstdout %q\nstderr %q", code, tt.wantCode, stdout.String(), stderr.String())
			}
		})
	}
}

var statusNow = time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)

// annotated returns triggers' annotations with the status qscale would write for them at t.
func annotated(ann map[string]string, o status.Observation, t time.Time) map[string]string {
	o.Observed = spec.ConfigDigest(ann)
	ann[status.Annotation] = status.Next(nil, o, t).Encode()
	return ann
}

func statusObjects() []runtime.Object {
	orders := []status.Trigger{{Name: "orders", Type: "kafka", Target: "50"}}
	trig := func() map[string]string {
		return map[string]string{spec.AnnotationTriggers: "- type: kafka\n  name: orders\n"}
	}
	meta := func(ns, name string, ann map[string]string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: ann}
	}
	edited := annotated(trig(), status.Observation{Triggers: orders}, statusNow.Add(-time.Hour))
	edited[spec.AnnotationMaxReplicas] = "7"
	return []runtime.Object{
		&appsv1.Deployment{ObjectMeta: meta("shop", "orders", annotated(trig(), status.Observation{Active: true, Triggers: orders}, statusNow.Add(-5*time.Minute))),
			Spec: appsv1.DeploymentSpec{Replicas: ptrTo[int32](3)}, Status: appsv1.DeploymentStatus{Replicas: 3}},
		&autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "qscale-orders", Labels: map[string]string{"app.kubernetes.io/managed-by": "qscale"}},
			Spec:   autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: "orders"}},
			Status: autoscalingv2.HorizontalPodAutoscalerStatus{DesiredReplicas: 9}},
		&appsv1.Deployment{ObjectMeta: meta("shop", "broken", annotated(trig(), status.Observation{Problem: "qscale.io/triggers: [0] (orders).metadata.consumerGroup: is required"}, statusNow.Add(-2*time.Hour))),
			Spec: appsv1.DeploymentSpec{Replicas: ptrTo[int32](1)}, Status: appsv1.DeploymentStatus{Replicas: 1}},
		&appsv1.StatefulSet{ObjectMeta: meta("shop", "ledger", annotated(trig(), status.Observation{Paused: true, PausedReplicas: ptrTo[int32](2), Triggers: orders}, statusNow.Add(-30*time.Second))),
			Spec: appsv1.StatefulSetSpec{Replicas: ptrTo[int32](2)}, Status: appsv1.StatefulSetStatus{Replicas: 2}},
		&appsv1.Deployment{ObjectMeta: meta("shop", "fresh", trig()), Spec: appsv1.DeploymentSpec{Replicas: ptrTo[int32](1)}},
		&appsv1.Deployment{ObjectMeta: meta("shop", "edited", edited), Spec: appsv1.DeploymentSpec{Replicas: ptrTo[int32](1)}},
		&appsv1.Deployment{ObjectMeta: meta("shop", "plain", nil)},
		&appsv1.Deployment{ObjectMeta: meta("other", "billing", annotated(trig(), status.Observation{Triggers: orders}, statusNow.Add(-3*24*time.Hour))),
			Spec: appsv1.DeploymentSpec{Replicas: ptrTo[int32](1)}, Status: appsv1.DeploymentStatus{Replicas: 1}},
	}
}

func ptrTo[T any](v T) *T { return &v }

// rawMetrics serves the raw value 420 for shop/orders, and refuses every other read as a
// user without the right to read external metrics would be refused.
func rawMetrics(t *testing.T) *metricsfake.FakeExternalMetricsClient {
	c := &metricsfake.FakeExternalMetricsClient{}
	c.AddReactor("list", "*", func(a clienttesting.Action) (bool, runtime.Object, error) {
		l := a.(clienttesting.ListAction)
		sel := l.GetListRestrictions().Labels.String()
		if l.GetResource().Resource != "qscale-orders" || !strings.Contains(sel, "qscale.io/raw=true") {
			t.Errorf("read %s with %s: want the trigger's metric with qscale.io/raw=true", l.GetResource().Resource, sel)
		}
		if a.GetNamespace() == "shop" && strings.Contains(sel, "qscale.io/name=orders") && strings.Contains(sel, "qscale.io/kind=deployment") {
			return true, &v1beta1.ExternalMetricValueList{Items: []v1beta1.ExternalMetricValue{{Value: *resource.NewMilliQuantity(420000, resource.DecimalSI)}}}, nil
		}
		return true, nil, errors.New(`externalmetrics.external.metrics.k8s.io "qscale-orders" is forbidden`)
	})
	return c
}

func TestStatusTable(t *testing.T) {
	c := statusClients{kube: kubefake.NewClientset(statusObjects()...), metrics: rawMetrics(t)}
	tests := []struct {
		name          string
		namespace     string
		output        string
		allNamespaces bool
		want          string
	}{
		{name: "one namespace", namespace: "shop", want: `
NAME                 READY     ACTIVE    FALLBACK   PAUSED     REPLICAS   SINCE
deployment/broken    False     False     False      False      1/1        120m
deployment/edited    Unknown   Unknown   Unknown    Unknown    1/0        <unknown>
deployment/fresh     Unknown   Unknown   Unknown    Unknown    1/0        <unknown>
deployment/orders    True      True      False      False      9/3        5m
statefulset/ledger   True      False     False      True (2)   2/2        30s
`},
		{name: "all namespaces, wide", allNamespaces: true, output: "wide", want: `
NAMESPACE   NAME                 READY     ACTIVE    FALLBACK   PAUSED     REPLICAS   SINCE       TRIGGERS              REASON
other       deployment/billing   True      False     False      False      1/1        3d          orders=<unknown>/50   <none>
shop        deployment/broken    False     False     False      False      1/1        120m        <none>                qscale.io/triggers: [0] (orders).metadata.consumerGroup: is required
shop        deployment/edited    Unknown   Unknown   Unknown    Unknown    1/0        <unknown>   orders=<unknown>/50   the qscale.io annotations changed since qscale wrote the status
shop        deployment/fresh     Unknown   Unknown   Unknown    Unknown    1/0        <unknown>   <none>                no status yet: qscale has not reconciled the workload (is it running, and watching this namespace?)
shop        deployment/orders    True      True      False      False      9/3        5m          orders=420/50         <none>
shop        statefulset/ledger   True      False     False      True (2)   2/2        30s         orders=<unknown>/50   <none>
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := tt.namespace
			rows, err := gatherStatus(context.Background(), c, ns, tt.output != "")
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := printStatus(&out, rows, tt.output, tt.allNamespaces, statusNow); err != nil {
				t.Fatal(err)
			}
			if got := "\n" + out.String(); got != tt.want {
				t.Errorf("got:%s\nwant:%s", got, tt.want)
			}
		})
	}
}

func TestStatusJSON(t *testing.T) {
	c := statusClients{kube: kubefake.NewClientset(statusObjects()...), metrics: rawMetrics(t)}
	rows, err := gatherStatus(context.Background(), c, "shop", true)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := printStatus(&out, rows, "json", false, statusNow); err != nil {
		t.Fatal(err)
	}
	var list statusList
	if err := json.Unmarshal(out.Bytes(), &list); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if len(list.Items) != 5 {
		t.Fatalf("%d items, want 5", len(list.Items))
	}
	orders := list.Items[3]
	if orders.Name != "orders" || !orders.Status.Active || orders.Replicas.Desired != 9 ||
		len(orders.Values) != 1 || orders.Values[0].Value != "420" || orders.Values[0].Target != "50" {
		t.Errorf("orders: %+v", orders)
	}
	if ledger := list.Items[4]; ledger.Values[0].Value != "" || !strings.Contains(ledger.Values[0].Error, "forbidden") {
		t.Errorf("a refused read: %+v", ledger.Values)
	}
	var yamlOut bytes.Buffer
	if err := printStatus(&yamlOut, nil, "yaml", false, statusNow); err != nil || yamlOut.String() != "items: []\n" {
		t.Errorf("an empty list in YAML: %q, %v", yamlOut.String(), err)
	}
}
