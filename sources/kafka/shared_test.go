package kafka_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/qscale/qscale/internal/loopback"
	"github.com/qscale/qscale/sources"
)

func TestBrokerStopsAndComesBack(t *testing.T) {
	ports, err := loopback.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	start := func() *testCluster {
		tc := newCluster(t, kfake.Ports(ports...), kfake.SeedTopics(2, "orders"))
		tc.produce(t, "orders", map[int32]int{0: 20, 1: 20})
		tc.commit(t, "g", "orders", map[int32]int64{0: 10, 1: 20})
		return tc
	}
	tc := start()
	tr := parse(t, map[string]string{"bootstrapServers": tc.addrs, "consumerGroup": "g", "topic": "orders"}, nil)
	pool := newPool(t)
	if got := pollOnce(t, pool, 5*time.Second, tr)[0]; got.Err != nil || got.Value != 10 {
		t.Fatalf("before the stop: value, err = %v, %v; want 10", got.Value, got.Err)
	}

	tc.Close()
	got := pollOnce(t, pool, 2*time.Second, tr)[0]
	if got.Err == nil {
		t.Fatalf("with the cluster stopped: value %v and no error", got.Value)
	}
	if msg := got.Err.Error(); !strings.Contains(msg, "kafka cluster "+tc.addrs) || !strings.Contains(msg, "connection refused") {
		t.Errorf("error should name the cluster and the cause: %v", got.Err)
	}

	start()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got = pollOnce(t, pool, 2*time.Second, tr)[0]
		if got.Err == nil || time.Now().After(deadline) {
			break
		}
	}
	if got.Err != nil || got.Value != 10 {
		t.Fatalf("after the restart, the same client should recover: value, err = %v, %v; want 10", got.Value, got.Err)
	}
}

// Targets that share a cluster share one client and one round of requests: the committed
// offsets of every group come in one OffsetFetch per coordinator, whatever the number of
// targets or groups.
func TestTargetsShareOneClientAndOneRound(t *testing.T) {
	const targets = 1000
	tests := []struct {
		name  string
		group func(i int) string
	}{
		{name: "one group each", group: func(i int) string { return fmt.Sprintf("g%d", i) }},
		{name: "one group for all", group: func(int) string { return "shared" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := newCluster(t, kfake.SeedTopics(12, "orders"))
			tc.produce(t, "orders", map[int32]int{0: 5, 7: 5})
			triggers := make([]sources.Trigger, targets)
			committed := map[string]bool{}
			for i := range triggers {
				g := tt.group(i)
				if !committed[g] {
					tc.commit(t, g, "orders", map[int32]int64{0: 0})
					committed[g] = true
				}
				triggers[i] = parse(t, map[string]string{"bootstrapServers": tc.addrs, "consumerGroup": g, "topic": "orders"}, nil)
			}
			checkOneRound(t, tc, triggers)
		})
	}
}

// checkOneRound polls triggers twice through one pool and checks the second, steady poll:
// every value right, a handful of requests and no new connection.
func checkOneRound(t *testing.T, tc *testCluster, triggers []sources.Trigger) {
	t.Helper()
	pool := newPool(t)
	connsAtStart := tc.conns.Load()
	pollOnce(t, pool, 10*time.Second, triggers...) // connects, learns metadata and coordinators
	tc.snapshotRequests()
	connsBefore := tc.conns.Load()

	for i, s := range pollOnce(t, pool, 10*time.Second, triggers...) {
		// p0: 5 records, committed 0 → 5; p7: 5 records, no commit → 1 (latest).
		if s.Err != nil || s.Value != 6 {
			t.Fatalf("target %d: value, err = %v, %v; want 6", i, s.Value, s.Err)
		}
	}
	reqs := tc.snapshotRequests()
	if fetches := reqs[kmsg.OffsetFetch.Int16()]; fetches < 1 || fetches > 3 {
		t.Errorf("OffsetFetch requests = %d, want 1 to 3 (one per coordinator)", fetches)
	}
	if lists := reqs[kmsg.ListOffsets.Int16()]; lists < 1 || lists > 6 {
		t.Errorf("ListOffsets requests = %d, want at most 2 per broker", lists)
	}
	total := 0
	for _, n := range reqs {
		total += n
	}
	if total > 12 {
		t.Errorf("requests for one poll of %d targets = %d (%v), want at most 12", len(triggers), total, reqs)
	}
	if pool.Len() != 1 {
		t.Errorf("pool holds %d clients, want 1", pool.Len())
	}
	if opened := tc.conns.Load() - connsBefore; opened != 0 {
		t.Errorf("a steady poll opened %d connections", opened)
	}
	// A poll runs two request streams at once (commits and offset listings), so the first
	// poll can race to two connections per broker, plus the seed: never more, whatever the
	// number of targets.
	if all := tc.conns.Load() - connsAtStart; all > 2*3+1 {
		t.Errorf("connections opened by the pool = %d, want at most 7", all)
	}
}

func TestPoolClosesClientsNoLongerUsed(t *testing.T) {
	a := newCluster(t, kfake.SeedTopics(1, "orders"))
	b := newCluster(t, kfake.SeedTopics(1, "orders"))
	ta := parse(t, map[string]string{"bootstrapServers": a.addrs, "consumerGroup": "g", "topic": "orders"}, nil)
	tb := parse(t, map[string]string{"bootstrapServers": b.addrs, "consumerGroup": "g", "topic": "orders"}, nil)
	pool := newPool(t)
	pollOnce(t, pool, 5*time.Second, ta, tb)
	if pool.Len() != 2 {
		t.Fatalf("pool holds %d clients, want 2", pool.Len())
	}
	pool.Prune([]sources.Trigger{ta})
	if pool.Len() != 1 {
		t.Fatalf("after pruning b, pool holds %d clients, want 1", pool.Len())
	}
	if got := pollOnce(t, pool, 5*time.Second, ta)[0]; got.Err != nil {
		t.Fatalf("the kept client stopped working: %v", got.Err)
	}
}
