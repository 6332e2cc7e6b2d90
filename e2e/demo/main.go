// Command demo runs qscale end to end on this machine, with no cluster needed: a real
// Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager), a Kafka-protocol
// broker (kfake) in-process, qscale itself, and a workload simulator — a producer whose rate
// bursts and falls idle, and consumers that process a fixed number of messages per second for
// each replica the Deployment has. A live view shows lag and replicas as qscale scales the
// Deployment through a real HPA, out, in and to zero. Run it with `make demo`.
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
	flag.IntVar(&o.perReplica, "per-replica", 40, "messages per second one replica consumes")
	flag.Parse()
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
}
