//go:build e2e

package e2e

import (
	"errors"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Scenario 1: Kafka lag grows → the HPA scales the Deployment to ceil(lag/lagThreshold),
// clamped; the metric read through the API server is the true lag; the group catches up →
// back down.
func TestKafkaLagScalesOutAndIn(t *testing.T) {
	t.Parallel()
	ns := namespace(t, "kafka-scale")
	kafkaTopic(t, "orders", 8)
	commitAt(t, "workers", "orders", map[int32]int64{0: 0, 1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0, 7: 0})
	deployment(t, ns, "workers", 1, map[string]string{
		"qscale.io/triggers":         kafkaTrigger("orders", "workers", "orders"),
		"qscale.io/max-replicas":     "6",
		"qscale.io/polling-interval": "1s",
		"qscale.io/hpa-behavior":     fastHPA,
	})
	produce(t, "orders", map[int32]int{0: 21, 1: 20})
	waitReplicas(t, ns, "workers", 5, 60*time.Second) // ceil(41/10)

	hpa, err := env.kube.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctxFor(t, 5*time.Second), "qscale-workers", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := hpa.Spec.Metrics[0].External
	if m.Metric.Name != "qscale-orders" || m.Target.Type != autoscalingv2.AverageValueMetricType || m.Target.AverageValue.Value() != 10 || hpa.Spec.MaxReplicas != 6 {
		t.Errorf("HPA spec %+v", hpa.Spec)
	}
	waitMetric(t, ns, "qscale-orders", "workers", 41, 30*time.Second)

	produce(t, "orders", map[int32]int{2: 40, 3: 40})
	waitReplicas(t, ns, "workers", 6, 60*time.Second) // clamped to max-replicas

	catchUp(t, "workers", "orders")
	waitReplicas(t, ns, "workers", 1, 60*time.Second)
}

// Scenario 5: a bad annotation gets a Warning Event naming the field, creates no HPA, and
// does not stop another Deployment from scaling.
func TestBadAnnotationStaysLocal(t *testing.T) {
	t.Parallel()
	ns := namespace(t, "bad-config")
	kafkaTopic(t, "bad-config", 4)
	deployment(t, ns, "broken", 1, map[string]string{
		"qscale.io/triggers":     strings.Replace(kafkaTrigger("lag", "g", "bad-config"), `lagThreshold: '10'`, `lagThreshold: 'ten'`, 1),
		"qscale.io/max-replicas": "many",
	})
	deployment(t, ns, "healthy", 1, map[string]string{
		"qscale.io/triggers": kafkaTrigger("lag", "g", "bad-config"), "qscale.io/polling-interval": "1s", "qscale.io/hpa-behavior": fastHPA,
	})
	msg := waitEvent(t, ns, "broken", "InvalidScalingConfig", 30*time.Second)
	for _, want := range []string{`qscale.io/max-replicas: must be a whole number of at least 1, got "many"`, `qscale.io/triggers: [0] (lag).metadata.lagThreshold: must be a number, got "ten"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("Event %q lacks %q", msg, want)
		}
	}
	commitAt(t, "g", "bad-config", map[int32]int64{0: 0, 1: 0, 2: 0, 3: 0})
	produce(t, "bad-config", map[int32]int{0: 15, 1: 15})
	waitReplicas(t, ns, "healthy", 3, 60*time.Second)
	if _, err := env.kube.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctxFor(t, 5*time.Second), "qscale-broken", metav1.GetOptions{}); err == nil {
		t.Error("an HPA exists for a Deployment that was never valid")
	}
	replicasStay(t, ns, "broken", 1, 2*time.Second)
}

// Scenario 7: the metrics API refuses anonymous and unauthorised callers through the API
// server; the HPA controller's service account may read.
func TestMetricsAPIAccess(t *testing.T) {
	t.Parallel()
	ns := namespace(t, "access")
	kafkaTopic(t, "access", 1)
	deployment(t, ns, "w", 1, map[string]string{"qscale.io/triggers": kafkaTrigger("lag", "g", "access"), "qscale.io/polling-interval": "1s"})
	hpaController := impersonating("system:serviceaccount:kube-system:horizontal-pod-autoscaler", "system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated")
	if err := waitUntil(ctxFor(t, 30*time.Second), 30*time.Second, func() (bool, error) {
		_, err := metricValue(hpaController, ns, "qscale-lag", "w")
		return err == nil, nil
	}); err != nil {
		t.Fatalf("the HPA controller's account cannot read the metric: %v\n%s", err, tailQscale())
	}
	for name, cfg := range map[string]func() (int64, error){
		"a user without RBAC rights": func() (int64, error) {
			return metricValue(impersonating("mallory", "system:authenticated"), ns, "qscale-lag", "w")
		},
		"an anonymous caller": func() (int64, error) {
			anon := *env.cp.Config
			anon.CertFile, anon.KeyFile = "", ""
			return metricValue(&anon, ns, "qscale-lag", "w")
		},
	} {
		_, err := cfg()
		var se *statusError
		if !errors.As(err, &se) || (se.code != 401 && se.code != 403) {
			t.Errorf("%s: %v, want 401 or 403", name, err)
		}
	}
}

// Scenario 8: removing qscale.io/triggers deletes the HPA; qscale never touches an HPA it
// does not own.
func TestRemovingTriggersDeletesTheHPAOnly(t *testing.T) {
	t.Parallel()
	ns := namespace(t, "ownership")
	kafkaTopic(t, "ownership", 1)
	deployment(t, ns, "mine", 1, map[string]string{"qscale.io/triggers": kafkaTrigger("lag", "g", "ownership")})
	deployment(t, ns, "theirs", 1, map[string]string{"qscale.io/triggers": kafkaTrigger("lag", "g", "ownership")})
	foreign := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "team-hpa", Namespace: ns},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{MaxReplicas: 3,
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "theirs"}},
	}
	if _, err := env.kube.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(ctxFor(t, 5*time.Second), foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitHPA(t, ns, "qscale-mine", true, 30*time.Second) // the annotated Deployment's
	waitEvent(t, ns, "theirs", "HPAConflict", 30*time.Second)
	annotate(t, ns, "mine", map[string]string{"qscale.io/triggers": ""})
	annotate(t, ns, "theirs", map[string]string{"qscale.io/triggers": ""})
	waitHPA(t, ns, "qscale-mine", false, 30*time.Second) // removing qscale.io/triggers deletes it
	hpas := env.kube.AutoscalingV2().HorizontalPodAutoscalers(ns)
	if h, err := hpas.Get(ctxFor(t, 5*time.Second), "team-hpa", metav1.GetOptions{}); err != nil || h.Spec.MaxReplicas != 3 {
		t.Fatalf("qscale touched an HPA it does not own: %v %+v", err, h)
	}
}
