//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/qscale/qscale/e2e/controlplane"
)

// qscale's leader election timing: controller-runtime's defaults, which qscale keeps.
const (
	leaseDuration = 15 * time.Second
	retryPeriod   = 2 * time.Second
	// A candidate tries every retry period, jittered by up to 1.2 times more (up to 4.4s). It
	// counts the lease duration from when it saw the last renewal, up to one try after the
	// renewal, and takes the Lease at its first try once that has passed: so up to two tries
	// after the lease duration, and a second of slack for a busy machine.
	tryPeriod     = retryPeriod * 22 / 10
	handoverSlack = 2*tryPeriod + time.Second
)

// TestLeaderHandover runs two qscale replicas with --leader-elect, each as a user of its own
// so that the API server's audit log tells their writes apart, and ends the leader while a
// min-replicas 0 Deployment is scaled: the other replica takes the Lease and carries on, and
// the two replicas' writes never interleave.
func TestLeaderHandover(t *testing.T) {
	t.Parallel()
	h := startHandover(t)
	t.Run("SIGKILL: the other replica takes over within the lease duration", func(t *testing.T) {
		took := h.handOver(t, syscall.SIGKILL)
		t.Logf("handover after SIGKILL: %.1fs", took.Seconds())
		if bound := leaseDuration + handoverSlack; took > bound {
			t.Errorf("handover after SIGKILL took %s, want at most %s (the lease duration and two tries)", took.Round(time.Millisecond), bound)
		}
		// A backlog that arrives once the leader is gone: only the new leader can wake the
		// Deployment from 0 (qscale's own write), and the HPA then scales on its metric.
		produceTo(t, h.kafka.ListenAddrs(), "jobs", map[int32]int{0: 10, 1: 10, 2: 10, 3: 5})
		h.c.waitReplicas(t, h.replicas[1], h.ns, "workers", 4, 90*time.Second) // ceil(35/10)
		h.checkWritesDoNotInterleave(t, 0, 1)
	})
	t.Run("SIGTERM: the leader releases the Lease at once", func(t *testing.T) {
		h.startReplica(t, "qscale-c", true)
		took := h.handOver(t, syscall.SIGTERM)
		t.Logf("handover after SIGTERM: %.1fs", took.Seconds())
		if bound := tryPeriod + 2*time.Second; took > bound {
			t.Errorf("handover after SIGTERM took %s, want at most %s: the leader releases the Lease as it stops, and the "+
				"other replica takes it at its next retry", took.Round(time.Millisecond), bound)
		}
		// The group catches up: the HPA scales in, and only the new leader can take the
		// Deployment to 0 once the cooldown has passed.
		ends, err := adminOf(t, h.kafka.ListenAddrs()).ListEndOffsets(ctxFor(t, 10*time.Second), "jobs")
		if err != nil {
			t.Fatal(err)
		}
		if err := adminOf(t, h.kafka.ListenAddrs()).CommitAllOffsets(ctxFor(t, 10*time.Second), "workers", ends.Offsets()); err != nil {
			t.Fatal(err)
		}
		h.c.waitReplicas(t, h.replicas[2], h.ns, "workers", 0, 90*time.Second)
		h.checkWritesDoNotInterleave(t, 1, 2)
	})
}

// BenchmarkLeaderHandover measures the time from the end of the leader to the other
// replica's acquisition of the Lease (its acquireTime): after SIGKILL, bounded by the lease
// duration; after SIGTERM, by the retry period. Run with -benchtime 1x.
func BenchmarkLeaderHandover(b *testing.B) {
	h := startHandover(b)
	sigkill := h.handOver(b, syscall.SIGKILL)
	h.startReplica(b, "qscale-c", true)
	sigterm := h.handOver(b, syscall.SIGTERM)
	b.ReportMetric(sigkill.Seconds(), "s-handover-sigkill")
	b.ReportMetric(sigterm.Seconds(), "s-handover-sigterm")
	b.ReportMetric(0, "ns/op")
}

// handover is a control plane with an audit log, a Kafka cluster of its own, qscale replicas
// in leader election (each a user of its own) and one Deployment they scale.
type handover struct {
	c        *cluster
	kafka    *kfake.Cluster
	ns       string
	replicas []*controlplane.Qscale
	users    []string
	holders  []string // the Lease holder identity of each replica, once known
	leader   int      // the replica holding the Lease
}

func startHandover(t testing.TB) *handover {
	t.Helper()
	h := &handover{c: newCluster(t, controlplane.Options{Audit: true})}
	var err error
	if h.kafka, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(8, "jobs")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.kafka.Close)
	h.ns = h.c.namespace("work")
	h.c.namespace("qscale") // the Lease's
	h.startReplica(t, "qscale-a", false)
	holder, _ := waitLeader(t, h.c.kube, 60*time.Second)
	h.holders[0] = holder
	h.startReplica(t, "qscale-b", true) // the metrics API is served by the replica that stays

	commitOn(t, adminOf(t, h.kafka.ListenAddrs()), "workers", "jobs", atStart(8))
	h.c.deployment(h.ns, "workers", map[string]string{
		"qscale.io/triggers": fmt.Sprintf("- type: kafka\n  name: jobs\n  metadata: {bootstrapServers: %q, consumerGroup: workers, topic: jobs, lagThreshold: '10'}\n",
			strings.Join(h.kafka.ListenAddrs(), ",")),
		"qscale.io/min-replicas":     "0",
		"qscale.io/cooldown-period":  "2s",
		"qscale.io/polling-interval": "1s",
		"qscale.io/hpa-behavior":     fastHPA,
	})
	// The first leader creates the HPA and, the topic being empty, scales to 0.
	h.c.waitReplicas(t, h.replicas[0], h.ns, "workers", 0, 60*time.Second)
	h.c.waitEvent(t, h.replicas[0], h.ns, "workers", "ScaledToZero", 30*time.Second)
	return h
}

// startReplica starts a replica as its own user; with serve, the metrics API moves to it.
func (h *handover) startReplica(t testing.TB, user string, serve bool) {
	t.Helper()
	kubeconfig, err := h.c.cp.AdminKubeconfig(user)
	if err != nil {
		t.Fatal(err)
	}
	q := h.c.qscale(t, user, false, controlplane.QscaleOptions{Kubeconfig: kubeconfig,
		Args: []string{"--leader-elect", "--leader-election-namespace", "qscale"}})
	h.replicas = append(h.replicas, q)
	h.users = append(h.users, user)
	h.holders = append(h.holders, "")
	if !serve {
		return
	}
	if err := h.c.cp.PointExternalMetrics(ctxFor(t, time.Minute), "qscale", q.SecurePort); err != nil {
		t.Fatal(err)
	}
	// When it moves, the APIService may still say Available from the replica it named before;
	// the aggregator follows the change within moments, and the HPA retries meanwhile.
	if err := h.c.cp.WaitAPIServiceAvailable(ctxFor(t, time.Minute), "v1beta1.external.metrics.k8s.io", 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

// handOver sends sig to the leader and waits until another replica holds the Lease; it
// returns the time from the signal to that replica's acquisition.
func (h *handover) handOver(t testing.TB, sig syscall.Signal) time.Duration {
	t.Helper()
	old := h.replicas[h.leader]
	sent := time.Now()
	if err := old.Signal(sig); err != nil {
		t.Fatal(err)
	}
	holder, acquired := waitLeader(t, h.c.kube, leaseDuration+time.Minute, h.holders[h.leader])
	took := acquired.Sub(sent)
	if acquired.IsZero() {
		took = time.Since(sent)
	}
	select {
	case <-old.Exited():
	case <-time.After(30 * time.Second):
		t.Fatalf("%s still runs 30s after %s", h.users[h.leader], sig)
	}
	// The new holder is the replica started last among those still running: with two
	// running, the one that was not the leader.
	next := len(h.replicas) - 1
	if next == h.leader {
		next--
	}
	h.leader, h.holders[next] = next, holder
	return took
}

// checkWritesDoNotInterleave reads the audit log: every write in the workload's namespace by
// the replica ended (HPAs, the scale subresource, Events) completed before the first such
// write by the one that took over was received.
func (h *handover) checkWritesDoNotInterleave(t *testing.T, ended, next int) {
	t.Helper()
	events, err := h.c.cp.ReadAudit()
	if err != nil {
		t.Fatal(err)
	}
	before, after := writes(events, h.users[ended], h.ns), writes(events, h.users[next], h.ns)
	if len(before) == 0 || len(after) == 0 {
		t.Fatalf("writes in %s: %d by %s, %d by %s; want both to have written", h.ns, len(before), h.users[ended], len(after), h.users[next])
	}
	first := after[0].RequestReceivedTimestamp.Time
	for _, e := range after {
		if e.RequestReceivedTimestamp.Time.Before(first) {
			first = e.RequestReceivedTimestamp.Time
		}
	}
	t.Logf("%d writes by %s, then %d by %s from %s", len(before), h.users[ended], len(after), h.users[next], first.Format(time.StampMicro))
	for _, e := range before {
		if !e.StageTimestamp.Time.Before(first) {
			t.Errorf("%s wrote %s after %s had begun writing at %s: %s %s", h.users[ended], e.StageTimestamp.Format(time.StampMicro),
				h.users[next], first.Format(time.StampMicro), e.Verb, e.RequestURI)
		}
	}
}

// writes are user's requests that wrote to namespace ns.
func writes(events []auditv1.Event, user, ns string) []auditv1.Event {
	var out []auditv1.Event
	for _, e := range events {
		if e.User.Username == user && e.ObjectRef != nil && e.ObjectRef.Namespace == ns {
			out = append(out, e)
		}
	}
	return out
}
