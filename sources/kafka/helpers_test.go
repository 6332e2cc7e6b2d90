package kafka_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/qscale/qscale/internal/loopback"
	"github.com/qscale/qscale/sources"
	"github.com/qscale/qscale/sources/internal/sourcetest"
	"github.com/qscale/qscale/sources/kafka"
)

// testCluster is a kfake cluster speaking the Kafka protocol on real loopback ports, with
// counters of the requests it serves and the connections it accepts.
type testCluster struct {
	*kfake.Cluster
	addrs string
	conns atomic.Int64

	mu       sync.Mutex
	requests map[int16]int
}

func newCluster(t testing.TB, opts ...kfake.Opt) *testCluster {
	t.Helper()
	tc := &testCluster{requests: map[int16]int{}}
	opts = append([]kfake.Opt{
		kfake.NumBrokers(3),
		kfake.ListenFn(func(network, addr string) (net.Listener, error) {
			l, err := net.Listen(network, addr)
			if err != nil {
				return nil, err
			}
			return &countingListener{Listener: l, n: &tc.conns}, nil
		}),
	}, opts...)
	var c *kfake.Cluster
	err := loopback.RelistenWithin(30*time.Second, func() (err error) { // a restart on the same ports
		c, err = kfake.NewCluster(opts...)
		return err
	})
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	tc.Cluster = c
	tc.addrs = strings.Join(c.ListenAddrs(), ",")
	c.Control(func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		tc.mu.Lock()
		tc.requests[req.Key()]++
		tc.mu.Unlock()
		return nil, nil, false
	})
	return tc
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// snapshotRequests returns the requests served so far, by key, and resets the counts.
func (tc *testCluster) snapshotRequests() map[int16]int {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	out := tc.requests
	tc.requests = map[int16]int{}
	return out
}

// admin returns a kadm client for setting the cluster up, closed with the test.
func (tc *testCluster) admin(t testing.TB) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(tc.addrs, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// produce writes n records to each given partition of topic.
func (tc *testCluster) produce(t testing.TB, topic string, counts map[int32]int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(tc.addrs, ",")...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for p, n := range counts {
		for range n {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte("m")})
		}
	}
	if err := cl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// commit sets the group's committed offsets on topic.
func (tc *testCluster) commit(t testing.TB, group, topic string, offsets map[int32]int64) {
	t.Helper()
	os := kadm.Offsets{}
	for p, at := range offsets {
		os.Add(kadm.Offset{Topic: topic, Partition: p, At: at, LeaderEpoch: -1})
	}
	if err := tc.admin(t).CommitAllOffsets(ctxT(t), group, os); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

// truncate deletes records below the given offsets, as retention would.
func (tc *testCluster) truncate(t testing.TB, topic string, below map[int32]int64) {
	t.Helper()
	os := kadm.Offsets{}
	for p, at := range below {
		os.Add(kadm.Offset{Topic: topic, Partition: p, At: at})
	}
	resp, err := tc.admin(t).DeleteRecords(ctxT(t), os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("delete records: %v", err)
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var registry = sources.Registry{"kafka": kafka.Kind}

// parse builds a kafka trigger from metadata and Secret data, failing the test on a
// configuration error.
func parse(t testing.TB, md, secret map[string]string) sources.Trigger {
	t.Helper()
	return sourcetest.Parse(t, registry, "kafka", md, secret)
}

// pollOnce polls triggers through pool with a deadline.
func pollOnce(_ testing.TB, pool *sources.Pool, timeout time.Duration, triggers ...sources.Trigger) []sources.Sample {
	return sourcetest.Poll(pool, timeout, triggers...)
}

func newPool(t testing.TB) *sources.Pool { return sourcetest.NewPool(t, registry) }
