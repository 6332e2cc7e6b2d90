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
)

// invalidKind is one way of getting a workload's configuration wrong.
type invalidKind struct {
	name        string
	annotations func(i int, trigger string) map[string]string
	says        []string // every one must be in the InvalidScalingConfig Event
	longName    bool     // the workload's name is longer than a label value may be
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
	{name: "missing-secret", says: []string{`qscale.io/triggers: [0] (lag).authenticationRef: Secret "absent"`},
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
	{name: "long-name", says: []string{"63"}, longName: true,
		annotations: func(_ int, tr string) map[string]string { return map[string]string{"qscale.io/triggers": tr} }},
}

func (k invalidKind) workload(i int) string {
	if k.longName { // 74 characters: a valid Deployment name, not a label value
		return fmt.Sprintf("%s-%s-%d", k.name, strings.Repeat("x", 62), i)
	}
	return fmt.Sprintf("%s-%d", k.name, i)
}

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
// what is wrong. It reports qscale's memory and poll durations, to be read beside the
// 1,000-workload figures of BENCHMARKS.md. Control plane, Kafka cluster and qscale are the
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
	for i := range mixSamples {
		produceTo(t, seeds, fmt.Sprintf("sample-%d", i), map[int32]int{0: 10, 1: 10, 2: 10, 3: 5})
	}
	for i := range mixSamples {
		c.waitReplicas(t, q, mixNS, fmt.Sprintf("w%04d", i), 4, 90*time.Second) // ceil(35/10)
	}
	t.Logf("the sample scaled %.1fs after the first Deployment's creation", time.Since(created).Seconds())
	checkInvalidEvents(t, c)
	reportMixFigures(t, q)
	t.Logf("the whole scenario took %.1fs", time.Since(start).Seconds())
}

// prepareMixGroups commits every valid workload's group at 0, so that none gets a
// NoCommittedOffsets Warning: Events are written at qscale's rate limit, as are HPAs.
func prepareMixGroups(t *testing.T, seeds []string) {
	a := adminOf(t, seeds)
	for i := range mixSamples {
		topic := fmt.Sprintf("sample-%d", i)
		if resp, err := a.CreateTopic(ctxFor(t, 10*time.Second), 4, 1, nil, topic); err != nil || resp.Err != nil {
			t.Fatal(errors.Join(err, resp.Err))
		}
	}
	errs := make([]error, mixValid)
	parallel(16, mixValid, func(i int) {
		topic, n := mixTopic, int32(12)
		if i < mixSamples {
			topic, n = fmt.Sprintf("sample-%d", i), 4
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
		if i < mixSamples {
			topic = fmt.Sprintf("sample-%d", i)
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
	for _, k := range invalidKinds {
		for i := range mixPerKind {
			d := controlplane.Deployment(mixNS, k.workload(i), 1, k.annotations(i, trigger(mixValid+i)))
			labels := map[string]string{"app": k.name} // a long name is no label value
			d.Spec.Selector.MatchLabels, d.Spec.Template.Labels = labels, labels
			ds = append(ds, d)
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
