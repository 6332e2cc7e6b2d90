// Command demo runs qscale end to end on this machine, with no cluster needed: a real
// Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, and
// kwok playing the kubelet of a fake Node, so that pods start and become Ready after a
// start-up delay), a Kafka-protocol broker (kfake) in-process, qscale itself, and a workload
// simulator — a producer whose rate bursts and falls idle, and consumers that process a fixed
// number of messages per second for each ready replica of the Deployment. A live view shows
// lag, the age of the oldest waiting message, replicas and ready replicas as qscale scales the
// Deployment through a real HPA, out, in and to zero. Run it with `make demo`; with
// -target-backlog-age the trigger keeps the oldest message younger than that instead of asking
// for a replica per lagThreshold messages (`make demo DEMO_FLAGS=-target-backlog-age=20s`).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	o := options{}
	flag.DurationVar(&o.duration, "duration", 4*time.Minute, "how long the simulation runs")
	flag.StringVar(&o.qscale, "qscale", "bin/qscale", "the qscale binary")
	flag.IntVar(&o.perReplica, "per-replica", 40, "messages per second one ready replica consumes")
	// 30s, as for a service that loads a cache or warms up a JIT: a tenth of the default run,
	// long enough that the backlog piles up while new pods start, short enough for the run to
	// drain it and cool down to zero.
	flag.DurationVar(&o.startDelay, "start-delay", 30*time.Second, "how long a new pod takes to become Ready (0: at once)")
	flag.DurationVar(&o.targetAge, "target-backlog-age", 0, "scale on targetBacklogAge (at least 1s) instead of lagThreshold")
	flag.Parse()
	if o.startDelay < 0 || o.duration <= 0 || o.perReplica <= 0 || (o.targetAge != 0 && o.targetAge < time.Second) {
		fmt.Fprintln(os.Stderr, "demo: -duration and -per-replica must be positive, -start-delay at least 0 and -target-backlog-age 0 or at least 1s")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

type options struct {
	duration   time.Duration
	qscale     string
	perReplica int
	startDelay time.Duration
	targetAge  time.Duration
}
