package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/qscale/qscale/e2e/controlplane"
	"github.com/qscale/qscale/e2e/kafkasim"
)

const (
	demoNamespace = "demo"
	workload      = "order-workers"
	topic         = "orders"
	partitions    = 12
	group         = "order-workers"
	lagThreshold  = 50
)

func run(ctx context.Context, o options) error {
	say("starting a Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok) on loopback")
	// kwok is what makes pods start at all: a delay of 0 becomes the least it can count.
	cp, err := controlplane.Start(ctx, controlplane.Options{PodStartDelay: max(o.startDelay, time.Millisecond)})
	if err != nil {
		return err
	}
	defer cp.Stop()
	kube, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		return err
	}
	say("starting a Kafka-protocol broker (kfake, 3 brokers) with topic %q of %d partitions", topic, partitions)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(partitions, topic))
	if err != nil {
		return err
	}
	defer cluster.Close()
	say("starting qscale (log: %s)", cp.Dir+"/qscale.log")
	q, err := cp.StartQscale(ctx, o.qscale)
	if err != nil {
		return err
	}
	defer q.Stop()

	sim, err := kafkasim.New(kafkasim.Config{Brokers: cluster.ListenAddrs(), Topic: topic, Partitions: partitions,
		Group: group, PerReplica: float64(o.perReplica)})
	if err != nil {
		return err
	}
	defer sim.Close()
	if err := sim.Start(ctx); err != nil {
		return err
	}
	if err := createWorkload(ctx, kube, strings.Join(cluster.ListenAddrs(), ","), o); err != nil {
		return err
	}
	scaling := fmt.Sprintf("lagThreshold %d", lagThreshold)
	if o.targetAge > 0 {
		scaling = fmt.Sprintf("targetBacklogAge %s, replicaThroughput %d", o.targetAge, o.perReplica)
	}
	say("created Deployment %s/%s: %s, min 0, max %d, one poll a second, a 20s cooldown", demoNamespace, workload, scaling, partitions)
	say("a new pod is Ready %s after it is scheduled; each ready replica consumes %d messages/s", o.startDelay, o.perReplica)
	say("the producer idles, ramps, bursts and stops (%s in all; Ctrl-C stops early)\n", o.duration)

	v := &view{kube: kube, sim: sim, metricsURL: q.MetricsURL}
	sctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	v.run(sctx, o.duration)
	v.summary(os.Stdout)
	return nil
}

func say(format string, args ...any) {
	fmt.Printf("qscale demo | "+format+"\n", args...)
}

// createWorkload creates the annotated consumer Deployment. Its pods run on kwok's fake Node,
// which runs no containers: the simulator plays the consumers, as many as the Deployment has
// ready replicas. With o.targetAge the trigger keeps the oldest message younger than it, and
// the HPA gets the behavior qscale sets for that; replicaThroughput tells qscale what a
// replica does before one has started (it refines that from what ready replicas consume).
// Otherwise it asks for one replica per lagThreshold messages, with a quick HPA behavior of
// its own.
func createWorkload(ctx context.Context, kube kubernetes.Interface, brokers string, o options) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: demoNamespace}}
	if _, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return err
	}
	annotations := map[string]string{
		"qscale.io/min-replicas":     "0",
		"qscale.io/max-replicas":     fmt.Sprint(partitions),
		"qscale.io/polling-interval": "1s",
		"qscale.io/cooldown-period":  "20s",
	}
	scaling := fmt.Sprintf("lagThreshold: '%d'", lagThreshold)
	if o.targetAge > 0 {
		scaling = fmt.Sprintf("targetBacklogAge: %s, replicaThroughput: '%d'", o.targetAge, o.perReplica)
	} else {
		annotations["qscale.io/hpa-behavior"] = "scaleUp: {stabilizationWindowSeconds: 0, policies: [{type: Percent, value: 200, periodSeconds: 2}]}\n" +
			"scaleDown: {stabilizationWindowSeconds: 10, policies: [{type: Percent, value: 50, periodSeconds: 2}]}\n"
	}
	annotations["qscale.io/triggers"] = fmt.Sprintf("- type: kafka\n  name: orders\n  metadata: {bootstrapServers: %q, consumerGroup: %s, topic: %s, %s}\n",
		brokers, group, topic, scaling)
	d := controlplane.Deployment(demoNamespace, workload, 1, annotations)
	_, err := kube.AppsV1().Deployments(demoNamespace).Create(ctx, d, metav1.CreateOptions{})
	return err
}

// rate is the producer's messages per second at fraction f of the run: idle, a ramp, a burst,
// a tail, then idle again so the workload cools down to zero.
func rate(f float64) float64 {
	switch {
	case f < 0.12:
		return 0
	case f < 0.25:
		return 40 + (f-0.12)/0.13*160 // 40 → 200
	case f < 0.42:
		return 420
	case f < 0.62:
		return 120
	}
	return 0
}

// elapsed formats a duration as m:ss.
func elapsed(d time.Duration) string {
	s := int(d.Seconds())
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
