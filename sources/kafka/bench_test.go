package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/qscale/qscale/sources"
	"github.com/qscale/qscale/sources/internal/sourcetest"
)

// BenchmarkPoll measures one steady-state poll of one trigger on a topic of n partitions on a
// 3-broker kfake cluster: "caught-up" has no backlog, "lagging" has backlog on every other
// partition (which also needs start offsets, listed concurrently).
func BenchmarkPoll(b *testing.B) {
	for _, n := range []int32{10, 100, 1000, 5000, 10000} {
		for _, lagging := range []bool{false, true} {
			name := fmt.Sprintf("partitions=%d/caught-up", n)
			if lagging {
				name = fmt.Sprintf("partitions=%d/lagging", n)
			}
			b.Run(name, func(b *testing.B) {
				tc := newCluster(b, kfake.SeedTopics(n, "orders"))
				seedOffsets(b, tc, n, lagging)
				tr := parse(b, map[string]string{"bootstrapServers": tc.addrs, "consumerGroup": "workers", "topic": "orders"}, nil)
				pool := newPool(b)
				measurePolls(b, tc, pool, []sources.Trigger{tr})
			})
		}
	}
}

// BenchmarkPollShared measures one poll of 1,000 targets on one cluster, each with its own
// consumer group or all sharing one.
func BenchmarkPollShared(b *testing.B) {
	const targets = 1000
	for _, groups := range []int{targets, 1} {
		b.Run(fmt.Sprintf("targets=%d/groups=%d", targets, groups), func(b *testing.B) {
			tc := newCluster(b, kfake.SeedTopics(30, "orders"))
			tc.produce(b, "orders", map[int32]int{0: 10, 1: 10, 2: 10})
			adm := tc.admin(b)
			triggers := make([]sources.Trigger, targets)
			for i := range triggers {
				g := fmt.Sprintf("g%d", i%groups)
				if i < groups {
					os := kadm.Offsets{}
					os.AddOffset("orders", 0, 5, -1)
					commitAll(b, adm, g, os)
				}
				triggers[i] = parse(b, map[string]string{"bootstrapServers": tc.addrs, "consumerGroup": g, "topic": "orders"}, nil)
			}
			pool := newPool(b)
			connsBefore := tc.conns.Load()
			measurePolls(b, tc, pool, triggers)
			b.ReportMetric(float64(tc.conns.Load()-connsBefore), "conns")
			b.ReportMetric(float64(pool.Len()), "clients")
		})
	}
}

// seedOffsets writes one record to every partition and commits the group at the end of each
// (caught up) or of every other one (lagging).
func seedOffsets(b *testing.B, tc *testCluster, n int32, lagging bool) {
	b.Helper()
	counts := map[int32]int{}
	for p := range n {
		counts[p] = 1
	}
	tc.produce(b, "orders", counts)
	os := kadm.Offsets{}
	for p := range n {
		at := int64(1)
		if lagging && p%2 == 0 {
			at = 0
		}
		os.AddOffset("orders", p, at, -1)
	}
	commitAll(b, tc.admin(b), "workers", os)
}

func commitAll(b *testing.B, adm *kadm.Client, group string, os kadm.Offsets) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := adm.CommitAllOffsets(ctx, group, os); err != nil {
		b.Fatal(err)
	}
}

// measurePolls runs b.N polls after a warm-up and reports the median and p99 poll time and the
// Kafka requests sent per poll; allocations come from b.ReportAllocs.
func measurePolls(b *testing.B, tc *testCluster, pool *sources.Pool, triggers []sources.Trigger) {
	b.Helper()
	ctx := context.Background()
	for _, s := range pool.Poll(ctx, triggers) { // connect, learn metadata and coordinators
		if s.Err != nil {
			b.Fatal(s.Err)
		}
	}
	tc.snapshotRequests()
	durations := sourcetest.TimePolls(ctx, b, pool, triggers)
	requests := 0
	for _, n := range tc.snapshotRequests() {
		requests += n
	}
	sourcetest.ReportPercentiles(b, durations)
	b.ReportMetric(float64(requests)/float64(len(durations)), "requests/poll")
}
