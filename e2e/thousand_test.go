//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/qscale/qscale/e2e/controlplane"
	"github.com/qscale/qscale/scaler"
)

// invalidKind is one way of getting a workload's configuration wrong.
type invalidKind struct {
	name        string
	annotations func(i int, trigger string) map[string]string
	says        []string // every one must be in the InvalidScalingConfig Event
}

// rejectedBehaviors parse as a HorizontalPodAutoscalerBehavior, but the API server refuses
// an HPA with them.
var rejectedBehaviors = []string{
	"scaleUp: {policies: [{type: Pods, value: 4, periodSeconds: 0}]}",
	"scaleUp: {policies: [{type: Pods, value: 4, periodSeconds: 4000}]}",
	"scaleUp: {selectPolicy: Sideways}",
}

var invalidKinds = []invalidKind{
	{name: "bad-range", says: []string{"qscale.io/max-replicas: must be at least min-replicas"},
		annotations: func(_ int, tr string) map[string]string {
			return map[string]string{"qscale.io/triggers": tr, "qscale.io/min-replicas": "5", "qscale.io/max-replicas": "2"}
		}},
	{name: "unknown-annotation", says: []string{"qscale.io/max-replica: unknown annotation"},
		annotations: func(_ int, tr string) map[string]string {
			return map[string]string{"qscale.io/triggers": tr, "qscale.io/max-replica": "3"}
		}},
	{name: "bad-yaml", says: []string{"qscale.io/triggers: must be a YAML or JSON list of triggers"},
		annotations: func(int, string) map[string]string {
			return map[string]string{"qscale.io/triggers": "- type: kafka\n  metadata: {bootstrapServers: [\n"}
		}},
	{name: "unknown-type", says: []string{"qscale.io/triggers: [0] (lag).type"},
		annotations: func(int, string) map[string]string {
			return map[string]string{"qscale.io/triggers": "- type: kafkaa\n  name: lag\n  metadata: {topic: t}\n"}
		}},
	{name: "missing-group", says: []string{"qscale.io/triggers: [0] (lag).metadata.consumerGroup"},
		annotations: func(_ int, tr string) map[string]string {
			return map[string]string{"qscale.io/triggers": strings.Replace(tr, "consumerGroup: ", "consumerGroupX: ", 1)}
		}},
	{name: "missing-secret", says: []string{`qscale.io/triggers: [0] (lag).authenticationRef.name: Secret "absent"`},
		annotations: func(_ int, tr string) map[string]string {
			return map[string]string{"qscale.io/triggers": tr + "  authenticationRef: {name: absent}\n"}
		}},
	{name: "bad-interval", says: []string{"qscale.io/polling-interval: must be a duration"},
		annotations: func(_ int, tr string) map[string]string {
			return map[string]string{"qscale.io/triggers": tr, "qscale.io/polling-interval": "10 seconds"}
		}},
	{name: "bad-threshold", says: []string{"qscale.io/triggers: [0] (lag).metadata.lagThreshold"},
		annotations: func(_ int, tr string) map[string]string {
			return map[string]string{"qscale.io/triggers": strings.Replace(tr, "lagThreshold: '10'", "lagThreshold: 'ten'", 1)}
		}},
	{name: "rejected-behavior", says: []string{"qscale.io/hpa-behavior"},
		annotations: func(i int, tr string) map[string]string {
			return map[string]string{"qscale.io/triggers": tr, "qscale.io/hpa-behavior": rejectedBehaviors[i%len(rejectedBehaviors)]}
		}},
	{name: "secret-in-metadata", says: []string{"qscale.io/triggers: [0] (lag).metadata.password: is secret"},
		annotations: func(_ int, tr string) map[string]string {
			return map[string]string{"qscale.io/triggers": strings.Replace(tr, "lagThreshold: '10'", "lagThreshold: '10', sasl: plain, username: u, password: p", 1)}
		}},
}

func (k invalidKind) workload(i int) string { return fmt.Sprintf("%s-%d", k.name, i) }

// longName is the name of the i-th valid workload whose name is longer than a label value
// may be (63 characters): 74 characters, a valid Deployment name.
func longName(i int) string { return fmt.Sprintf("long-%s-%d", strings.Repeat("x", 67), i) }

// mixLong is how many valid workloads have such a name; the first has a topic of its own and
// gets a backlog.
const mixLong = 10

// mix is the workload set of TestThousandWorkloadsHundredInvalid.
const (
	mixValid    = 900
	mixPerKind  = 10
	mixSamples  = 5 // valid workloads with a topic of their own, which get a backlog
	mixNS       = "mix"
	mixTopic    = "mix"
	mixInterval = "5s" // as BenchmarkThousandWorkloads, whose figures BENCHMARKS.md records
)

// TestThousandWorkloadsHundredInvalid runs qscale (with its defaults) over 1,000 Deployments
// of which 100 are invalid in ten ways: the 900 get their HPAs and metrics, a sample of them
// scales on a backlog, and each of the 100 gets exactly one InvalidScalingConfig Event naming
// what is wrong. Ten more valid workloads have names longer than a label value may be: they
// get their HPAs and metrics too, and one of them scales. Every workload gets its status. It
// reports qscale's memory, its poll durations and its API requests once nothing changes, to
// be read beside the 1,000-workload figures of BENCHMARKS.md. Control plane, Kafka cluster and qscale are the
// test's own: 900 HPAs would slow every other scenario's.
func TestThousandWorkloadsHundredInvalid(t *testing.T) {
	t.Parallel()
	start := time.Now()
	// An HPA controller that gets round 900 HPAs within a few sync periods, so that the
	// sample's scaling is a matter of qscale's, not of its queue.
	c := newCluster(t, controlplane.Options{HPASyncPeriod: 5 * time.Second, HPAWorkers: 20, ControllerManagerQPS: 400})
	q := c.qscale(t, "qscale", true, controlplane.QscaleOptions{})
	kafka, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(12, mixTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kafka.Close)
	seeds := kafka.ListenAddrs()
	c.namespace(mixNS)
	t.Logf("control plane and qscale ready in %.1fs", time.Since(start).Seconds())
	prepareMixGroups(t, seeds)
	t.Logf("900 consumer groups committed after %.1fs", time.Since(start).Seconds())
	created := time.Now()
	createMix(t, c, strings.Join(seeds, ","))
	t.Logf("1,000 Deployments created in %.1fs", time.Since(created).Seconds())

	waitValidHPAs(t, c, q, 5*time.Minute)
	t.Logf("%d HPAs %.1fs after the first Deployment's creation", mixValid, time.Since(created).Seconds())
	checkMixMetrics(t, c, q)
	t.Logf("every valid workload's metric served %.1fs after the first Deployment's creation", time.Since(created).Seconds())
	checkLongNames(t, c, q)
	for i := range mixSamples {
		produceTo(t, seeds, fmt.Sprintf("sample-%d", i), map[int32]int{0: 10, 1: 10, 2: 10, 3: 5})
	}
	produceTo(t, seeds, "sample-long", map[int32]int{0: 10, 1: 10, 2: 10, 3: 5})
	for i := range mixSamples {
		c.waitReplicas(t, q, mixNS, fmt.Sprintf("w%04d", i), 4, 90*time.Second) // ceil(35/10)
	}
	c.waitReplicas(t, q, mixNS, longName(0), 4, 90*time.Second)
	t.Logf("the sample scaled %.1fs after the first Deployment's creation", time.Since(created).Seconds())
	checkInvalidEvents(t, c)
	reportMixFigures(t, q)
	waitStatuses(t, c, q, 3*time.Minute)
	t.Logf("every workload's status written %.1fs after the first Deployment's creation", time.Since(created).Seconds())
	reportSteadyRequests(t, q, 20*time.Second)
	t.Logf("the whole scenario took %.1fs", time.Since(start).Seconds())
}

// prepareMixGroups commits every valid workload's group at 0, so that none gets a
// NoCommittedOffsets Warning: Events are written at qscale's rate limit, as are HPAs.
func prepareMixGroups(t *testing.T, seeds []string) {
	a := adminOf(t, seeds)
	for i := range mixSamples + 1 {
		topic := fmt.Sprintf("sample-%d", i)
		if i == mixSamples {
			topic = "sample-long"
		}
		if resp, err := a.CreateTopic(ctxFor(t, 10*time.Second), 4, 1, nil, topic); err != nil || resp.Err != nil {
			t.Fatal(errors.Join(err, resp.Err))
		}
	}
	errs := make([]error, mixValid+mixLong)
	parallel(16, mixValid+mixLong, func(i int) {
		topic, n := mixTopic, int32(12)
		switch {
		case i < mixSamples:
			topic, n = fmt.Sprintf("sample-%d", i), 4
		case i == mixValid:
			topic, n = "sample-long", 4
		}
		var offsets kadm.Offsets
		for p := range n {
			offsets.AddOffset(topic, p, 0, -1)
		}
		errs[i] = a.CommitAllOffsets(context.Background(), fmt.Sprintf("group-%d", i), offsets)
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// createMix creates the 900 valid Deployments and the 100 invalid ones.
func createMix(t *testing.T, c *cluster, bootstrap string) {
	trigger := func(i int) string {
		topic := mixTopic
		switch {
		case i < mixSamples:
			topic = fmt.Sprintf("sample-%d", i)
		case i == mixValid:
			topic = "sample-long"
		}
		return fmt.Sprintf("- type: kafka\n  name: lag\n  metadata: {bootstrapServers: %q, consumerGroup: group-%d, topic: %s, lagThreshold: '10'}\n",
			bootstrap, i, topic)
	}
	var ds []*appsv1.Deployment
	for i := range mixValid {
		ds = append(ds, controlplane.Deployment(mixNS, fmt.Sprintf("w%04d", i), 1, map[string]string{
			"qscale.io/triggers": trigger(i), "qscale.io/polling-interval": mixInterval, "qscale.io/hpa-behavior": fastHPA,
		}))
	}
	for i := range mixLong {
		d := controlplane.Deployment(mixNS, longName(i), 1, map[string]string{
			"qscale.io/triggers": trigger(mixValid + i), "qscale.io/polling-interval": mixInterval, "qscale.io/hpa-behavior": fastHPA,
		})
		labels := map[string]string{"app": "long"} // a long name is no label value
		d.Spec.Selector.MatchLabels, d.Spec.Template.Labels = labels, labels
		ds = append(ds, d)
	}
	for _, k := range invalidKinds {
		for i := range mixPerKind {
			ds = append(ds, controlplane.Deployment(mixNS, k.workload(i), 1, k.annotations(i, trigger(mixValid+mixLong+i))))
		}
	}
	errs := make([]error, len(ds))
	parallel(16, len(ds), func(i int) {
		_, errs[i] = c.kube.AppsV1().Deployments(mixNS).Create(context.Background(), ds[i], metav1.CreateOptions{})
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// waitValidHPAs waits until each valid workload has its HPA.
func waitValidHPAs(t *testing.T, c *cluster, q *controlplane.Qscale, timeout time.Duration) {
	var got int
	err := waitUntil(context.Background(), timeout, func() (bool, error) {
		hpas, err := c.kube.AutoscalingV2().HorizontalPodAutoscalers(mixNS).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		got = 0
		for _, h := range hpas.Items {
			var i int
			if _, err := fmt.Sscanf(h.Name, "qscale-w%04d", &i); err == nil && i < mixValid {
				got++
			}
		}
		return got == mixValid, nil
	})
	if err != nil {
		t.Fatalf("%d valid workloads have their HPA after %s, want %d\nqscale log:\n%s", got, timeout, mixValid, c.cp.TailFile(q.Log, 30))
	}
}

// checkMixMetrics reads every valid workload's metric through the API server.
func checkMixMetrics(t *testing.T, c *cluster, q *controlplane.Qscale) {
	errs := make([]error, mixValid)
	parallel(16, mixValid, func(i int) {
		name := fmt.Sprintf("w%04d", i)
		errs[i] = waitUntil(context.Background(), time.Minute, func() (bool, error) {
			_, err := metricValue(c.cp.Config, mixNS, "qscale-lag", name)
			return err == nil, nil
		})
		if errs[i] != nil {
			errs[i] = fmt.Errorf("%s: metric not served: %w", name, errs[i])
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("%v\nqscale log:\n%s", err, c.cp.TailFile(q.Log, 30))
	}
}

// checkLongNames checks that each workload whose name is longer than a label value may be has
// its HPA (named qscale-<name>, or shortened where that is too long) and its metric, read with
// the label value its HPA's selector carries.
func checkLongNames(t *testing.T, c *cluster, q *controlplane.Qscale) {
	errs := make([]error, mixLong)
	parallel(mixLong, mixLong, func(i int) {
		name := longName(i)
		errs[i] = waitUntil(context.Background(), time.Minute, func() (bool, error) {
			h, err := c.kube.AutoscalingV2().HorizontalPodAutoscalers(mixNS).Get(context.Background(), scaler.HPAName(name), metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			label := h.Spec.Metrics[0].External.Metric.Selector.MatchLabels[scaler.LabelName]
			_, err = metricValue(c.cp.Config, mixNS, "qscale-lag", label)
			return err == nil && label == scaler.NameLabel(name), nil
		})
		if errs[i] != nil {
			errs[i] = fmt.Errorf("%s: no HPA or no metric served: %w", name, errs[i])
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("%v\nqscale log:\n%s", err, c.cp.TailFile(q.Log, 30))
	}
}

// parallel runs f(0) … f(n-1) on at most width goroutines.
func parallel(width, n int, f func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, width)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f(i)
		})
	}
	wg.Wait()
}
