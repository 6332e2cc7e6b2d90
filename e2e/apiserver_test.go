//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/qscale/qscale/e2e/controlplane"
)

// outageLength is how long the API server stays away: longer than the renew deadline of
// leader election (10s), and than the watch back-off of client-go's reflectors at its start.
const outageLength = 30 * time.Second

// TestAPIServerOutage stops kube-apiserver for 30s and starts it again (same port, etcd and
// certificates) under a running qscale, with and without leader election: qscale stays the
// same process and logs nothing fatal; it keeps its values through the outage (its Prometheus
// endpoint shows the trigger's value throughout, and the metrics API serves it as soon as the
// API server is back); and it resumes reconciling without a restart (an annotation edited
// after the outage takes effect).
func TestAPIServerOutage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"without leader election", nil},
		{"with leader election", []string{"--leader-elect", "--leader-election-namespace", "qscale"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			apiServerOutage(t, tc.args)
		})
	}
}

func apiServerOutage(t *testing.T, args []string) {
	c := newCluster(t, controlplane.Options{})
	c.namespace("qscale") // the Lease's, before qscale campaigns
	q := c.qscale(t, "qscale", true, controlplane.QscaleOptions{Args: args})
	if len(args) > 0 {
		waitLeader(t, c.kube, 60*time.Second)
	}
	// A polling interval of 15s keeps a value fresh for 45s: a qscale that lost its values
	// would have none to serve right after the outage, before its next poll.
	ns := c.laggingWorkload(t, "outage", "15s")
	c.waitReplicas(t, q, ns, "w", 4, 60*time.Second) // ceil(35/10)
	c.waitMetricValue(t, q, ns, "qscale-lag", "w", 35, 30*time.Second)
	pid := q.Cmd.Process.Pid

	c.cp.StopAPIServer()
	watchThroughOutage(t, q, map[string]string{"namespace": ns, "target": "deployment/w", "trigger": "lag"}, 35)
	if err := c.cp.RestartAPIServer(context.Background(), time.Minute); err != nil {
		t.Fatal(err)
	}
	took := c.waitMetricValue(t, q, ns, "qscale-lag", "w", 35, 30*time.Second)
	t.Logf("the metric was served through the API server %.1fs after it was ready again", took.Seconds())
	checkSameProcess(t, q, pid)

	// qscale's own doing is the HPA's new maximum; the HPA controller then scales to it, on
	// its own time (its informers too come back from the outage with a back-off).
	edited := time.Now()
	annotateIn(t, c.kube, ns, "w", map[string]string{"qscale.io/max-replicas": "2"})
	c.waitHPAMax(t, q, ns, "qscale-w", 2, 2*time.Minute)
	t.Logf("an annotation edited after the outage was in the HPA %.1fs later", time.Since(edited).Seconds())
	checkSameProcess(t, q, pid)
}

// watchThroughOutage checks, every second for outageLength, that qscale runs and that its
// Prometheus endpoint reports want for the trigger.
func watchThroughOutage(t *testing.T, q *controlplane.Qscale, labels map[string]string, want float64) {
	t.Helper()
	deadline := time.Now().Add(outageLength)
	for time.Now().Before(deadline) {
		if !q.Running() {
			t.Fatalf("qscale exited during the API server's outage (%v)\nqscale log:\n%s", q.Cmd.ProcessState, tailOf(q))
		}
		v, ok, err := scrapeSample(q.MetricsURL, "qscale_trigger_value", labels)
		if err != nil || !ok || v != want {
			t.Fatalf("during the outage qscale_trigger_value%v = %v (present %t, error %v), want %v", labels, v, ok, err, want)
		}
		select {
		case <-q.Exited():
		case <-time.After(time.Second):
		}
	}
}

// TestQscaleWaitsForTheAPIServer starts qscale while kube-apiserver is stopped: qscale keeps
// running (no crash loop) and, once the API server starts, becomes ready and scales a
// Deployment.
func TestQscaleWaitsForTheAPIServer(t *testing.T) {
	t.Parallel()
	c := newCluster(t, controlplane.Options{})
	ns := c.laggingWorkload(t, "late", "1s")
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cp.PointExternalMetrics(ctxFor(t, time.Minute), "qscale", ports[0]); err != nil {
		t.Fatal(err)
	}

	c.cp.StopAPIServer()
	q, err := c.cp.LaunchQscale(qscaleBin(), controlplane.QscaleOptions{SecurePort: ports[0], Log: c.cp.Dir + "/qscale.log"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Stop)
	select {
	case <-q.Exited():
		t.Fatalf("qscale exited while the API server was away (%v), where it should wait for it\nqscale log:\n%s", q.Cmd.ProcessState, tailOf(q))
	case <-time.After(15 * time.Second):
	}
	if err := c.cp.RestartAPIServer(context.Background(), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := q.WaitReady(context.Background(), time.Minute); err != nil {
		t.Fatalf("%v\nqscale log:\n%s", err, tailOf(q))
	}
	c.waitMetricValue(t, q, ns, "qscale-lag", "w", 35, time.Minute)
	// The HPA controller is not under test: spare it the back-off of its own reconnect.
	if err := c.cp.RestartControllerManager(context.Background(), time.Minute); err != nil {
		t.Fatal(err)
	}
	c.waitReplicas(t, q, ns, "w", 4, 90*time.Second) // ceil(35/10)
	checkSameProcess(t, q, q.Cmd.Process.Pid)
}

// laggingWorkload creates, in a new namespace named after name, the Deployment "w" of one
// replica with a Kafka trigger polled every interval, on a topic of its own whose 8
// partitions hold a lag of 35 (so 4 replicas at lagThreshold 10). It returns the namespace.
func (c *cluster) laggingWorkload(t *testing.T, name, interval string) string {
	t.Helper()
	ns, _ := c.laggingWorkloadOn(t, name, interval)
	return ns
}

// laggingWorkloadOn is laggingWorkload, returning the topic too (its consumer group has the
// same name), for a scenario that produces more.
func (c *cluster) laggingWorkloadOn(t *testing.T, name, interval string) (ns, topic string) {
	t.Helper()
	ns = c.namespace(name)
	topic = name + "-" + fmt.Sprint(time.Now().UnixNano())
	kafkaTopic(t, topic, 8)
	commitAt(t, topic, topic, atStart(8))
	produce(t, topic, map[int32]int{0: 20, 1: 15})
	c.deployment(ns, "w", map[string]string{
		"qscale.io/triggers":         kafkaTrigger("lag", topic, topic),
		"qscale.io/polling-interval": interval,
		"qscale.io/hpa-behavior":     fastHPA,
	})
	return ns, topic
}
