//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	appsv1 "k8s.io/api/apps/v1"
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
	return namespaceIn(t, env.kube, name)
}

// namespaceIn creates a namespace in the cluster kube.
func namespaceIn(t testing.TB, kube kubernetes.Interface, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := kube.CoreV1().Namespaces().Create(ctxFor(t, 10*time.Second), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

// deployment creates a Deployment with the given replicas and annotations. Its pods never
// run (there is no kubelet); the HPA needs only the Deployment.
func deployment(t testing.TB, ns, name string, replicas int32, annotations map[string]string) {
	t.Helper()
	createDeployment(t, env.kube, controlplane.Deployment(ns, name, replicas, annotations))
}

// createDeployment creates d in the cluster kube.
func createDeployment(t testing.TB, kube kubernetes.Interface, d *appsv1.Deployment) {
	t.Helper()
	if _, err := kube.AppsV1().Deployments(d.Namespace).Create(ctxFor(t, 10*time.Second), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// annotate changes a Deployment's annotations; an empty value removes one.
func annotate(t testing.TB, ns, name string, kv map[string]string) {
	t.Helper()
	annotateIn(t, env.kube, ns, name, kv)
}

// annotateIn changes a Deployment's annotations in the cluster kube.
func annotateIn(t testing.TB, kube kubernetes.Interface, ns, name string, kv map[string]string) {
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
	if _, err := kube.AppsV1().Deployments(ns).Patch(ctxFor(t, 10*time.Second), name, "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
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
	waitReplicasWhile(t, kube, nil, func() string { return env.cp.TailFile(qscaleLog, 30) }, ns, name, want, timeout)
}

// waitReplicasWhile waits until the Deployment's spec.replicas is want in the cluster kube,
// and fails at once when alive, if given, reports that qscale is gone; tail is qscale's log
// for the failure message.
func waitReplicasWhile(t testing.TB, kube kubernetes.Interface, alive func() error, tail func() string, ns, name string, want int32, timeout time.Duration) {
	t.Helper()
	var got int32
	var last error // a transient API error is retried, and reported if it is the last word
	err := waitUntil(context.Background(), timeout, func() (bool, error) {
		if alive != nil {
			if err := alive(); err != nil {
				return false, err
			}
		}
		d, err := kube.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		if last = err; err != nil {
			return false, nil
		}
		got = *d.Spec.Replicas
		return got == want, nil
	})
	if err != nil {
		t.Fatalf("%s/%s: replicas %d, want %d after %s: %v (last API error: %v)\nits Events:\n%s\nqscale log:\n%s",
			ns, name, got, want, timeout, err, last, eventsOf(kube, ns, name), tail())
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
	var found bool
	var last error // a transient API error is retried, and reported if it is the last word
	err := waitUntil(context.Background(), timeout, func() (bool, error) {
		msg, found, last = findEvent(kube, ns, object, reason)
		return found, nil
	})
	if err != nil {
		t.Fatalf("no %s Event on %s/%s: %v (last API error: %v)\nqscale log:\n%s", reason, ns, object, err, last, env.cp.TailFile(qscaleLog, 30))
	}
	return msg
}

// findEvent looks for an Event with reason on the object, and returns its message.
func findEvent(kube kubernetes.Interface, ns, object, reason string) (string, bool, error) {
	evs, err := kube.EventsV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return "", false, err
	}
	for _, e := range evs.Items {
		if e.Regarding.Name == object && e.Reason == reason {
			return e.Note, true, nil
		}
	}
	return "", false, nil
}

// metricValue reads a metric through the API server, as `kubectl get --raw` does.
func metricValue(cfg *rest.Config, ns, metric, workload string) (int64, error) {
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return 0, err
	}
	return metricValueWith(client, cfg.Host, ns, metric, workload)
}

// metricValueWith reads a metric as metricValue does, with a client of the caller's: one that
// keeps its connections between reads.
func metricValueWith(client *http.Client, host, ns, metric, workload string) (int64, error) {
	url := fmt.Sprintf("%s/apis/external.metrics.k8s.io/v1beta1/namespaces/%s/%s?labelSelector=qscale.io/kind=deployment,qscale.io/name=%s",
		host, ns, metric, workload)
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
	return adminOf(t, env.kafka.ListenAddrs())
}

// adminOf is an admin client of the Kafka cluster at seeds, closed when t ends.
func adminOf(t testing.TB, seeds []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// produce writes n records to each given partition.
func produce(t testing.TB, topic string, perPartition map[int32]int) {
	t.Helper()
	produceTo(t, env.kafka.ListenAddrs(), topic, perPartition)
}

// produceTo writes n records to each given partition of topic on the cluster at seeds.
func produceTo(t testing.TB, seeds []string, topic string, perPartition map[int32]int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
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
	commitOn(t, admin(t), group, topic, offsets)
}

// commitOn commits the group at offset on every given partition, through a.
func commitOn(t testing.TB, a *kadm.Client, group, topic string, offsets map[int32]int64) {
	t.Helper()
	os := kadm.Offsets{}
	for p, at := range offsets {
		os.AddOffset(topic, p, at, -1)
	}
	if err := a.CommitAllOffsets(ctxFor(t, 10*time.Second), group, os); err != nil {
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
	deploymentScaleIn(t, env.kube, ns, name, replicas)
}

// deploymentScaleIn sets a Deployment's replicas in the cluster kube.
func deploymentScaleIn(t testing.TB, kube kubernetes.Interface, ns, name string, replicas int32) {
	t.Helper()
	// The scale carries the Deployment's resourceVersion, which the deployment controller's
	// status writes move on: a conflict means read again.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := kube.AppsV1().Deployments(ns).GetScale(ctxFor(t, 5*time.Second), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		s.Spec.Replicas = replicas
		_, err = kube.AppsV1().Deployments(ns).UpdateScale(ctxFor(t, 5*time.Second), name, s, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// atStart maps partitions 0 to n-1 to offset 0, for commitAt: a group that has consumed
// nothing yet, which qscale gives no NoCommittedOffsets Warning.
func atStart(n int32) map[int32]int64 {
	m := make(map[int32]int64, n)
	for p := range n {
		m[p] = 0
	}
	return m
}

// watchReplicas polls the Deployments' spec.replicas every 200ms from now until the returned
// function is called, which returns every change away from want (and back): a check that a
// count held throughout a span in which other checks run.
func watchReplicas(kube kubernetes.Interface, ns string, want int32, names ...string) (stop func() []string) {
	done := make(chan struct{})
	var changes []string
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		seen := map[string]int32{}
		for _, name := range names {
			seen[name] = want
		}
		for {
			for _, name := range names {
				d, err := kube.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
				if err == nil && *d.Spec.Replicas != seen[name] {
					seen[name] = *d.Spec.Replicas
					changes = append(changes, fmt.Sprintf("%s/%s to %d replicas at %s", ns, name, *d.Spec.Replicas, time.Now().Format(time.StampMilli)))
				}
			}
			select {
			case <-done:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return func() []string {
		close(done)
		<-finished
		return changes
	}
}
