//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/qscale/qscale/e2e/controlplane"
	"github.com/qscale/qscale/e2e/kafkasim"
)

// ageLoad is the producer's schedule in the backlog-age scenario: a steady trickle that one
// replica handles, a ramp, a burst, a tail at a quarter of the burst, then nothing.
type ageLoad struct {
	warmUp, ramp, burst, tail time.Duration
	trickle, rampTo, burstAt  float64 // messages per second
	tailAt                    float64
}

func (l ageLoad) rate(at time.Duration) float64 {
	switch {
	case at < l.warmUp:
		return l.trickle
	case at < l.warmUp+l.ramp:
		return l.trickle + (l.rampTo-l.trickle)*float64(at-l.warmUp)/float64(l.ramp)
	case at < l.warmUp+l.ramp+l.burst:
		return l.burstAt
	case at < l.warmUp+l.ramp+l.burst+l.tail:
		return l.tailAt
	}
	return 0
}

func (l ageLoad) duration() time.Duration { return l.warmUp + l.ramp + l.burst + l.tail }

// ageSample is the workload at one moment of the scenario.
type ageSample struct {
	at                time.Duration // since the producer started
	rate              float64
	lag               int64
	oldest            time.Duration
	replicas, ready   int32
	produced, written int64
}

// Scenario: a Kafka workload with targetBacklogAge, whose pods take seconds to become Ready
// (kwok) and whose consumers each handle a fixed number of messages per second while Ready
// (kafkasim), under a producer that trickles, ramps, bursts, falls to a tail and stops:
//   - after the warm-up the oldest waiting message never gets older than the target;
//   - the replicas follow the ramp while the backlog stays young, long before a backlog of
//     the target's age exists: qscale scales on the arrival rate, not on the lag;
//   - once the burst's backlog has drained, the replicas stay at what the tail's arrival rate
//     needs, instead of falling to one because the queue is empty;
//   - the HPA qscale owns targets one replica per replica asked for, with qscale's behavior.
func TestBacklogAgeKeepsTarget(t *testing.T) {
	t.Parallel()
	const (
		target     = 20 * time.Second
		startDelay = 5 * time.Second
		perReplica = 20.0
		partitions = 24
	)
	load := ageLoad{warmUp: 30 * time.Second, ramp: 60 * time.Second, burst: 30 * time.Second, tail: 60 * time.Second,
		trickle: 30, rampTo: 240, burstAt: 400, tailAt: 100}
	c := newCluster(t, controlplane.Options{PodStartDelay: startDelay})
	q := c.qscale(t, "qscale", true, controlplane.QscaleOptions{})
	ns := c.namespace("backlog-age")
	topic := "age-" + ns
	kafkaTopic(t, topic, partitions)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sim, err := kafkasim.New(kafkasim.Config{Brokers: env.kafka.ListenAddrs(), Topic: topic, Partitions: partitions,
		Group: "workers", PerReplica: perReplica})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	if err := sim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c.deployment(ns, "workers", map[string]string{
		"qscale.io/triggers": fmt.Sprintf("- type: kafka\n  name: orders\n  metadata: {bootstrapServers: %q, consumerGroup: workers, topic: %s, targetBacklogAge: %s}\n",
			kafkaAddrs(), topic, target),
		"qscale.io/max-replicas":     "40",
		"qscale.io/polling-interval": "1s",
	})
	// The one replica is Ready before the producer starts: the warm-up measures the scenario,
	// not the first pod's start.
	c.waitPodsReady(t, ns, "workers", 1, time.Now(), startDelay+60*time.Second)

	samples := runAgeLoad(t, c, ns, "workers", sim, load)
	logAgeTimeline(t, samples)
	checkHPAForAge(t, c, ns, "workers")

	checkAgeKept(t, samples, load, target)
	checkRamp(t, samples, load, perReplica, target)
	checkTail(t, samples, load, perReplica, target)
	if t.Failed() {
		t.Logf("qscale log:\n%s", tailOf(q))
	}
}

// checkAgeKept: after the warm-up, the oldest waiting message is never older than target.
func checkAgeKept(t *testing.T, samples []ageSample, load ageLoad, target time.Duration) {
	t.Helper()
	for _, s := range samples {
		if s.at >= load.warmUp && s.oldest > target {
			t.Errorf("at %s (%.0f messages/s) the oldest waiting message was %s old, over the target %s",
				s.at.Round(time.Second), s.rate, s.oldest.Round(100*time.Millisecond), target)
			return
		}
	}
}

// checkRamp: by the end of the ramp the replicas are about what its rate needs, while the
// oldest message stayed younger than a quarter of the target throughout: they followed the
// arrival rate, not a backlog.
func checkRamp(t *testing.T, samples []ageSample, load ageLoad, perReplica float64, target time.Duration) {
	t.Helper()
	rampEnd := load.warmUp + load.ramp
	want := int32(math.Ceil(load.rampTo / perReplica))
	var oldest time.Duration
	var last ageSample
	for _, s := range samples {
		if s.at >= load.warmUp && s.at < rampEnd {
			oldest = max(oldest, s.oldest)
			last = s
		}
	}
	if last.replicas < want-1 || oldest > target/4 {
		t.Errorf("at the end of the ramp: %d replicas for %.0f messages/s (want about %d), and the oldest message during the ramp %s old (want under %s): the replicas did not follow the arrival rate ahead of the backlog",
			last.replicas, last.rate, want, oldest.Round(100*time.Millisecond), target/4)
	}
}

// checkTail: once the burst's backlog has had the target age to drain, the queue is mostly
// empty while the tail's messages still arrive, and the replicas stay at what they need.
func checkTail(t *testing.T, samples []ageSample, load ageLoad, perReplica float64, target time.Duration) {
	t.Helper()
	tailStart := load.warmUp + load.ramp + load.burst
	needed := int32(math.Ceil(load.tailAt / perReplica))
	for _, s := range samples {
		if s.at >= tailStart+target && s.at < load.duration() && s.replicas < needed {
			t.Errorf("at %s in the tail (%.0f messages/s, backlog %d) the workload had %d replicas, fewer than the %d the arrival rate needs",
				s.at.Round(time.Second), s.rate, s.lag, s.replicas, needed)
			return
		}
	}
}

// runAgeLoad drives the producer through load, keeps the simulated consumers at the
// Deployment's ready replicas, and samples the workload twice a second until load ends.
func runAgeLoad(t *testing.T, c *cluster, ns, name string, sim *kafkasim.Simulator, load ageLoad) []ageSample {
	t.Helper()
	var samples []ageSample
	start := time.Now()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		at := time.Since(start)
		if at > load.duration() {
			return samples
		}
		sim.SetRate(load.rate(at))
		d, err := c.kube.AppsV1().Deployments(ns).Get(ctxFor(t, 5*time.Second), name, metav1.GetOptions{})
		if err != nil {
			continue // a slow API server: the next tick reads it again
		}
		sim.SetReady(d.Status.ReadyReplicas)
		s := sim.Snapshot()
		samples = append(samples, ageSample{at: at, rate: s.Rate, lag: s.Lag, oldest: s.OldestAge,
			replicas: *d.Spec.Replicas, ready: d.Status.ReadyReplicas, produced: s.Produced, written: s.Consumed})
	}
	return samples
}

// logAgeTimeline logs the scenario every 5 seconds, for a reader of a failure.
func logAgeTimeline(t *testing.T, samples []ageSample) {
	t.Helper()
	var b strings.Builder
	next := time.Duration(0)
	for _, s := range samples {
		if s.at < next {
			continue
		}
		next += 5 * time.Second
		fmt.Fprintf(&b, "%5.0fs  rate %4.0f/s  lag %5d  oldest %5.1fs  replicas %2d  ready %2d\n",
			s.at.Seconds(), s.rate, s.lag, s.oldest.Seconds(), s.replicas, s.ready)
	}
	t.Logf("timeline:\n%s", b.String())
}

// checkHPAForAge checks the HPA qscale owns for a backlog-age trigger: its metric's target is
// one replica per replica asked for, and its behavior is qscale's (scale-up at once).
func checkHPAForAge(t *testing.T, c *cluster, ns, name string) {
	t.Helper()
	hpa, err := c.kube.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctxFor(t, 5*time.Second), "qscale-"+name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := hpa.Spec.Metrics[0].External
	if m.Target.Type != autoscalingv2.AverageValueMetricType || m.Target.AverageValue.Value() != 1 {
		t.Errorf("HPA metric target %+v, want AverageValue 1", m.Target)
	}
	b := hpa.Spec.Behavior
	if b == nil || b.ScaleUp == nil || b.ScaleUp.StabilizationWindowSeconds == nil || *b.ScaleUp.StabilizationWindowSeconds != 0 {
		t.Errorf("HPA behavior %+v, want qscale's: scale-up with no stabilization window", b)
	}
}
