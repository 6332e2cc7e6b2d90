//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/qscale/qscale/internal/loopback"
)

// Scenario 3: min-replicas 0 → idle goes to 0 after the cooldown; a message wakes it to 1
// within one polling interval; then the HPA takes over.
func TestScaleToZeroAndBack(t *testing.T) {
	t.Parallel()
	ns := namespace(t, "zero")
	kafkaTopic(t, "zero", 4)
	commitAt(t, "zw", "zero", map[int32]int64{0: 0, 1: 0, 2: 0, 3: 0})
	deployment(t, ns, "w", 1, map[string]string{
		"qscale.io/triggers":         kafkaTrigger("lag", "zw", "zero"),
		"qscale.io/min-replicas":     "0",
		"qscale.io/cooldown-period":  "3s",
		"qscale.io/polling-interval": "1s",
		"qscale.io/hpa-behavior":     fastHPA,
	})
	waitReplicas(t, ns, "w", 0, 30*time.Second)
	waitEvent(t, ns, "w", "ScaledToZero", 10*time.Second)

	produce(t, "zero", map[int32]int{0: 1})
	waitReplicas(t, ns, "w", 1, 10*time.Second)
	waitEvent(t, ns, "w", "Activated", 10*time.Second)

	produce(t, "zero", map[int32]int{1: 15, 2: 15})
	waitReplicas(t, ns, "w", 4, 30*time.Second) // ceil(31/10): the HPA took over
}

// Scenario 4: a broker that stops never scales the Deployment down; SourceError is recorded;
// with fallback configured the Deployment holds the fallback replicas; when the broker comes
// back, qscale recovers without a restart.
func TestBrokerStopsAndComesBack(t *testing.T) {
	t.Parallel()
	ns := namespace(t, "outage")
	ports, err := freePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	start := func() *kfake.Cluster {
		var c *kfake.Cluster
		err := loopback.RelistenWithin(30*time.Second, func() (err error) {
			c, err = kfake.NewCluster(kfake.NumBrokers(3), kfake.Ports(ports...), kfake.SeedTopics(4, "jobs"))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cluster := start()
	addrs := strings.Join(cluster.ListenAddrs(), ",")
	trigger := fmt.Sprintf("- type: kafka\n  name: jobs\n  metadata: {bootstrapServers: %q, consumerGroup: g, topic: jobs, lagThreshold: '10', scaleToZeroOnInvalidOffset: 'true'}\n", addrs)
	deployment(t, ns, "plain", 3, map[string]string{"qscale.io/triggers": trigger, "qscale.io/polling-interval": "1s", "qscale.io/hpa-behavior": fastHPA})
	deployment(t, ns, "fallback", 1, map[string]string{"qscale.io/triggers": trigger, "qscale.io/polling-interval": "1s", "qscale.io/hpa-behavior": fastHPA,
		"qscale.io/fallback-replicas": "5", "qscale.io/fallback-failures": "2"})
	waitReplicas(t, ns, "plain", 1, 30*time.Second) // no lag: the HPA brings it down to 1

	cluster.Close()
	waitEvent(t, ns, "plain", "SourceError", 30*time.Second)
	deploymentScale(t, ns, "plain", 3) // scaled up by hand while the source fails
	waitReplicas(t, ns, "fallback", 5, 30*time.Second)
	waitEvent(t, ns, "fallback", "FallbackActive", 10*time.Second)
	replicasStay(t, ns, "plain", 3, 3*time.Second) // a failing source never scales down

	cluster = start()
	defer cluster.Close()
	waitEvent(t, ns, "plain", "SourceRecovered", 30*time.Second)
	waitEvent(t, ns, "fallback", "FallbackEnded", 30*time.Second)
	waitReplicas(t, ns, "fallback", 1, 30*time.Second)
	waitReplicas(t, ns, "plain", 1, 30*time.Second)
}

// Scenario 6: paused freezes the Deployment; paused-replicas sets it to N and freezes it;
// removing the annotation resumes.
func TestPause(t *testing.T) {
	t.Parallel()
	ns := namespace(t, "pause")
	kafkaTopic(t, "pause", 12) // enough partitions that the cap does not bind
	commitAt(t, "pg", "pause", map[int32]int64{0: 0, 1: 0, 2: 0, 3: 0})
	produce(t, "pause", map[int32]int{0: 20, 1: 20})
	deployment(t, ns, "w", 1, map[string]string{"qscale.io/triggers": kafkaTrigger("lag", "pg", "pause"), "qscale.io/polling-interval": "1s", "qscale.io/hpa-behavior": fastHPA})
	waitReplicas(t, ns, "w", 4, 60*time.Second)

	annotate(t, ns, "w", map[string]string{"qscale.io/paused-replicas": "2"})
	waitReplicas(t, ns, "w", 2, 30*time.Second)
	// Paused, the workload has no HPA: once it is gone the HPA controller no longer writes
	// the scale, so what follows sees qscale's hold alone.
	waitHPA(t, ns, "qscale-w", false, 30*time.Second)
	produce(t, "pause", map[int32]int{2: 50})
	replicasStay(t, ns, "w", 2, 3*time.Second)

	annotate(t, ns, "w", map[string]string{"qscale.io/paused-replicas": "", "qscale.io/paused": "true"})
	replicasStay(t, ns, "w", 2, 3*time.Second)

	annotate(t, ns, "w", map[string]string{"qscale.io/paused": ""})
	waitReplicas(t, ns, "w", 9, 60*time.Second) // ceil(90/10)
}
