//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/metrics/pkg/apis/external_metrics/v1beta1"

	"github.com/qscale/qscale/e2e/controlplane"
	"github.com/qscale/qscale/internal/loopback"
)

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// namespace creates a namespace for one scenario.
func namespace(t testing.TB, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := env.kube.CoreV1().Namespaces().Create(ctxFor(t, 10*time.Second), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

// deployment creates a Deployment with the given replicas and annotations. Its pods never
// run (there is no kubelet); the HPA needs only the Deployment.
func deployment(t testing.TB, ns, name string, replicas int32, annotations map[string]string) {
	t.Helper()
	d := controlplane.Deployment(ns, name, replicas, annotations)
	if _, err := env.kube.AppsV1().Deployments(ns).Create(ctxFor(t, 10*time.Second), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// annotate changes a Deployment's annotations; an empty value removes one.
func annotate(t testing.TB, ns, name string, kv map[string]string) {
	t.Helper()
	ann := map[string]any{}
	for k, v := range kv {
		if v == "" {
			ann[k] = nil
		} else {
			ann[k] = v
		}
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": ann}})
	if _, err := env.kube.AppsV1().Deployments(ns).Patch(ctxFor(t, 10*time.Second), name, "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitReplicas waits until the Deployment's spec.replicas is want.
func waitReplicas(t testing.TB, ns, name string, want int32, timeout time.Duration) {
	t.Helper()
	waitReplicasOf(t, env.kube, env.qscaleLog, ns, name, want, timeout)
}

// waitReplicasOf waits until the Deployment's spec.replicas is want in the cluster kube, which
// the qscale logging to qscaleLog serves.
func waitReplicasOf(t testing.TB, kube kubernetes.Interface, qscaleLog, ns, name string, want int32, timeout time.Duration) {
	t.Helper()
	var got int32
	var last error // a transient API error is retried, and reported if it is the last word
	err := waitUntil(context.Background(), timeout, func() (bool, error) {
		d, err := kube.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		if last = err; err != nil {
			return false, nil
		}
		got = *d.Spec.Replicas
		return got == want, nil
	})
	if err != nil {
		t.Fatalf("%s/%s: replicas %d, want %d after %s: %v (last API error: %v)\nits Events:\n%s\nqscale log:\n%s",
			ns, name, got, want, timeout, err, last, eventsOf(kube, ns, name), env.cp.TailFile(qscaleLog, 30))
	}
}

// eventsOf lists the Events on an object, for failure messages.
func eventsOf(kube kubernetes.Interface, ns, object string) string {
	evs, err := kube.EventsV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, e := range evs.Items {
		if e.Regarding.Name == object {
			fmt.Fprintf(&b, "  %s %s: %s\n", e.Type, e.Reason, e.Note)
		}
	}
	return b.String()
}

// replicasStay checks that the Deployment keeps want replicas for d.
func replicasStay(t testing.TB, ns, name string, want int32, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		got, err := env.kube.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if *got.Spec.Replicas != want {
			t.Fatalf("%s/%s: replicas changed to %d, want them to stay %d", ns, name, *got.Spec.Replicas, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitEvent waits for an Event with reason on the object and returns its message.
func waitEvent(t testing.TB, ns, object, reason string, timeout time.Duration) string {
	t.Helper()
	return waitEventOf(t, env.kube, env.qscaleLog, ns, object, reason, timeout)
}

// waitHPA waits until the HPA ns/name exists, or until it is gone when exists is false.
func waitHPA(t testing.TB, ns, name string, exists bool, timeout time.Duration) {
	t.Helper()
	var last error
	err := waitUntil(context.Background(), timeout, func() (bool, error) {
		_, err := env.kube.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(context.Background(), name, metav1.GetOptions{})
		last = err
		if exists {
			return err == nil, nil
		}
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("HPA %s/%s: want exists=%t after %s, last answer %v\nqscale log:\n%s", ns, name, exists, timeout, last, tailQscale())
	}
}

// waitEventOf waits for an Event with reason on the object in the cluster kube, which the
// qscale logging to qscaleLog serves, and returns its message.
func waitEventOf(t testing.TB, kube kubernetes.Interface, qscaleLog, ns, object, reason string, timeout time.Duration) string {
	t.Helper()
	var msg string
	var last error // a transient API error is retried, and reported if it is the last word
	err := waitUntil(context.Background(), timeout, func() (bool, error) {
		evs, err := kube.EventsV1().Events(ns).List(context.Background(), metav1.ListOptions{})
		if last = err; err != nil {
			return false, nil
		}
		for _, e := range evs.Items {
			if e.Regarding.Name == object && e.Reason == reason {
				msg = e.Note
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no %s Event on %s/%s: %v (last API error: %v)\nqscale log:\n%s", reason, ns, object, err, last, env.cp.TailFile(qscaleLog, 30))
	}
	return msg
}

// metricValue reads a metric through the API server, as `kubectl get --raw` does.
func metricValue(cfg *rest.Config, ns, metric, workload string) (int64, error) {
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return 0, err
	}
	url := fmt.Sprintf("%s/apis/external.metrics.k8s.io/v1beta1/namespaces/%s/%s?labelSelector=qscale.io/kind=deployment,qscale.io/name=%s",
		cfg.Host, ns, metric, workload)
	resp, err := client.Get(url) //nolint:noctx // bounded by the client's own timeout
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != 200 {
		return 0, &statusError{resp.StatusCode}
	}
	var list v1beta1.ExternalMetricValueList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return 0, err
	}
	if len(list.Items) != 1 {
		return 0, fmt.Errorf("%d items", len(list.Items))
	}
	return list.Items[0].Value.Value(), nil
}

// waitMetric waits until the metric read through the API server is want. The HPA may act on a
// poll taken while messages were still arriving, so the replica count alone does not say the
// latest value has been served yet.
func waitMetric(t testing.TB, ns, metric, workload string, want int64, timeout time.Duration) {
	t.Helper()
	var got int64
	var last error
	err := waitUntil(context.Background(), timeout, func() (bool, error) {
		got, last = metricValue(env.cp.Config, ns, metric, workload)
		return last == nil && got == want, nil
	})
	if err != nil {
		t.Errorf("%s/%s: metric %s through the API server = %d (last error: %v), want %d after %s\nqscale log:\n%s",
			ns, workload, metric, got, last, want, timeout, tailQscale())
	}
}

type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("HTTP %d", e.code) }

func tailQscale() string {
	return env.cp.TailFile(env.qscaleLog, 30)
}

// kafkaTopic creates a topic with partitions on the shared kfake cluster.
func kafkaTopic(t testing.TB, topic string, partitions int32) {
	t.Helper()
	resp, err := admin(t).CreateTopic(ctxFor(t, 10*time.Second), partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
}

func kafkaAddrs() string { return strings.Join(env.kafka.ListenAddrs(), ",") }

func admin(t testing.TB) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.kafka.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// produce writes n records to each given partition.
func produce(t testing.TB, topic string, perPartition map[int32]int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.kafka.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for p, n := range perPartition {
		for range n {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte("job")})
		}
	}
	if err := cl.ProduceSync(ctxFor(t, 10*time.Second), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// catchUp commits the group at the end of every partition of topic.
func catchUp(t testing.TB, group, topic string) {
	t.Helper()
	a := admin(t)
	ends, err := a.ListEndOffsets(ctxFor(t, 10*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.CommitAllOffsets(ctxFor(t, 10*time.Second), group, ends.Offsets()); err != nil {
		t.Fatal(err)
	}
}

// commitAt commits the group at offset on every given partition.
func commitAt(t testing.TB, group, topic string, offsets map[int32]int64) {
	t.Helper()
	os := kadm.Offsets{}
	for p, at := range offsets {
		os.AddOffset(topic, p, at, -1)
	}
	if err := admin(t).CommitAllOffsets(ctxFor(t, 10*time.Second), group, os); err != nil {
		t.Fatal(err)
	}
}

// fastHPA is an hpa-behavior that lets the HPA move at once in both directions.
const fastHPA = `scaleUp: {stabilizationWindowSeconds: 0, policies: [{type: Percent, value: 1000, periodSeconds: 1}]}
scaleDown: {stabilizationWindowSeconds: 0, policies: [{type: Percent, value: 100, periodSeconds: 1}]}`

// kafkaTrigger is a kafka trigger on the shared cluster with lagThreshold 10.
func kafkaTrigger(name, group, topic string) string {
	return fmt.Sprintf("- type: kafka\n  name: %s\n  metadata: {bootstrapServers: %q, consumerGroup: %s, topic: %s, lagThreshold: '10'}\n",
		name, kafkaAddrs(), group, topic)
}

func freePorts(n int) ([]int, error) { return loopback.FreePorts(n) }

// deploymentScale sets a Deployment's replicas through its scale subresource, as a person would.
func deploymentScale(t testing.TB, ns, name string, replicas int32) {
	t.Helper()
	// The scale carries the Deployment's resourceVersion, which the deployment controller's
	// status writes move on: a conflict means read again.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := env.kube.AppsV1().Deployments(ns).GetScale(ctxFor(t, 5*time.Second), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		s.Spec.Replicas = replicas
		_, err = env.kube.AppsV1().Deployments(ns).UpdateScale(ctxFor(t, 5*time.Second), name, s, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
