package kafka_test

import (
	"maps"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/qscale/qscale/sources"
	"github.com/qscale/qscale/sources/internal/sourcetest"
	"github.com/qscale/qscale/sources/kafka"
)

// The counts of lagFixture, per partition of orders (produced, consumed, backlog):
//
//	p0: 10, 6 (committed 4, below start 6), 4
//	p1:  5, 5, 0
//	p2:  8, latest 7 / earliest 3 / scaleToZeroOnInvalidOffset 8, then 1 / 5 / 0
//	p3:  0, 0, 0
//
// and of audit p0: 3, 1, 2.
func TestCounters(t *testing.T) {
	tc := lagFixture(t)
	base := map[string]string{"bootstrapServers": tc.addrs, "consumerGroup": "workers", "topic": "orders", "targetBacklogAge": "30s"}
	with := func(kv ...string) map[string]string { return sourcetest.With(base, kv...) }
	tests := []struct {
		name      string
		md        map[string]string
		want      *sources.Counters
		wantValue float64
	}{
		{name: "latest: an uncommitted partition is consumed to one below its end", md: base,
			want: &sources.Counters{Produced: 23, Consumed: 18, Backlog: 5, Consumers: 4}, wantValue: 5},
		{name: "earliest: an uncommitted partition is consumed to its start", md: with("offsetResetPolicy", "earliest"),
			want: &sources.Counters{Produced: 23, Consumed: 14, Backlog: 9, Consumers: 4}, wantValue: 9},
		{name: "scaleToZeroOnInvalidOffset: an uncommitted partition is consumed to its end", md: with("scaleToZeroOnInvalidOffset", "true"),
			want: &sources.Counters{Produced: 23, Consumed: 19, Backlog: 4, Consumers: 4}, wantValue: 4},
		{name: "several topics", md: with("topic", "orders,audit"),
			want: &sources.Counters{Produced: 26, Consumed: 19, Backlog: 7, Consumers: 5}, wantValue: 7},
		{name: "every committed topic", md: with("topic", ""),
			want: &sources.Counters{Produced: 26, Consumed: 19, Backlog: 7, Consumers: 5}, wantValue: 7},
		{name: "partitionLimitation narrows the scope", md: with("partitionLimitation", "0,2"),
			want: &sources.Counters{Produced: 18, Consumed: 13, Backlog: 5, Consumers: 2}, wantValue: 5},
		{name: "the backlog is not capped at the partitions", md: with("topic", "orders,audit", "activationLagThreshold", "1"),
			want: &sources.Counters{Produced: 26, Consumed: 19, Backlog: 7, Consumers: 5}, wantValue: 7},
		{name: "allowIdleConsumers: no limit on the consumers", md: with("allowIdleConsumers", "true"),
			want: &sources.Counters{Produced: 23, Consumed: 18, Backlog: 5}, wantValue: 5},
		{name: "a threshold trigger has none", md: with("targetBacklogAge", "", "lagThreshold", "1"), wantValue: 4},
	}
	pool := newPool(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pollOnce(t, pool, 5*time.Second, parse(t, tt.md, nil))[0]
			sourcetest.WantSample(t, got, "", tt.wantValue, true)
			wantCounters(t, got, tt.want)
		})
	}
}

// wantCounters checks a sample's counters.
func wantCounters(t *testing.T, got sources.Sample, want *sources.Counters) {
	t.Helper()
	switch {
	case got.Err != nil:
		t.Fatalf("unexpected error: %v", got.Err)
	case (got.Counters == nil) != (want == nil):
		t.Fatalf("counters %+v, want %+v", got.Counters, want)
	case want != nil && *got.Counters != *want:
		t.Fatalf("counters %+v, want %+v", *got.Counters, *want)
	}
}

// A group that consumes moves Consumed; producing moves Produced; both by what happened.
func TestCountersFollowAConsumer(t *testing.T) {
	tc := newCluster(t, kfake.SeedTopics(2, "events"))
	tc.produce(t, "events", map[int32]int{0: 7, 1: 5})
	consumer, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(tc.addrs, ",")...),
		kgo.ConsumerGroup("workers"), kgo.ConsumeTopics("events"), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	tr := parse(t, map[string]string{"bootstrapServers": tc.addrs, "consumerGroup": "workers", "topic": "events",
		"targetBacklogAge": "1m", "offsetResetPolicy": "earliest"}, nil)
	pool := newPool(t)
	wantCounters(t, pollOnce(t, pool, 5*time.Second, tr)[0], &sources.Counters{Produced: 12, Consumed: 0, Backlog: 12, Consumers: 2})

	ctx := ctxT(t)
	for consumed := 0; consumed < 12; {
		fs := consumer.PollRecords(ctx, 12-consumed)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume: %v", err)
		}
		consumed += fs.NumRecords()
	}
	// Commit 4 of partition 0 and all of partition 1: 9 consumed.
	if err := consumer.CommitRecords(ctx, &kgo.Record{Topic: "events", Partition: 0, Offset: 3, LeaderEpoch: -1},
		&kgo.Record{Topic: "events", Partition: 1, Offset: 4, LeaderEpoch: -1}); err != nil {
		t.Fatalf("commit: %v", err)
	}
	wantCounters(t, pollOnce(t, pool, 5*time.Second, tr)[0], &sources.Counters{Produced: 12, Consumed: 9, Backlog: 3, Consumers: 2})

	tc.produce(t, "events", map[int32]int{0: 2, 1: 4})
	wantCounters(t, pollOnce(t, pool, 5*time.Second, tr)[0], &sources.Counters{Produced: 18, Consumed: 9, Backlog: 9, Consumers: 2})
}

// A topic deleted and created again resets its counts: they go down, and that is no error,
// though the start offsets listed before (up to metadataMaxAge ago) are above the new end
// offsets.
func TestCountersOfARecreatedTopic(t *testing.T) {
	tc := newCluster(t, kfake.SeedTopics(1, "orders"))
	tc.produce(t, "orders", map[int32]int{0: 10})
	tc.commit(t, "workers", "orders", map[int32]int64{0: 8})
	tc.truncate(t, "orders", map[int32]int64{0: 9})
	trigger := func(policy string) sources.Trigger {
		return parse(t, map[string]string{"bootstrapServers": tc.addrs, "consumerGroup": "workers", "topic": "orders",
			"targetBacklogAge": "30s", "offsetResetPolicy": policy}, nil)
	}
	triggers := []sources.Trigger{trigger("latest"), trigger("earliest")}
	pool := newPool(t)
	for _, got := range pollOnce(t, pool, 5*time.Second, triggers...) {
		wantCounters(t, got, &sources.Counters{Produced: 10, Consumed: 9, Backlog: 1, Consumers: 1})
	}

	recreate(t, tc, "orders")
	tc.produce(t, "orders", map[int32]int{0: 3})
	for i, got := range pollOnce(t, pool, 5*time.Second, triggers...) {
		if got.Err != nil {
			t.Fatalf("trigger %d, after the topic was created again: %v", i, got.Err)
		}
		if c := got.Counters; c.Produced != 3 || c.Consumed > 3 || c.Produced-c.Consumed != c.Backlog {
			t.Errorf("trigger %d: counters %+v, want 3 produced, and as many consumed as not waiting", i, *c)
		}
	}
}

// recreate deletes topic and creates it again with one partition.
func recreate(t *testing.T, tc *testCluster, topic string) {
	t.Helper()
	adm := tc.admin(t)
	if _, err := adm.DeleteTopic(ctxT(t), topic); err != nil {
		t.Fatalf("delete topic: %v", err)
	}
	if _, err := adm.CreateTopic(ctxT(t), 1, 1, nil, topic); err != nil {
		t.Fatalf("create topic: %v", err)
	}
}

func TestCount(t *testing.T) {
	const none = kafka.NoOffset
	p := func(start, end, committed int64) kafka.Partition {
		return kafka.Partition{Topic: "orders", Start: start, End: end, Committed: committed, Previous: none}
	}
	tests := []struct {
		name    string
		cfg     kafka.Config
		parts   []kafka.Partition
		want    sources.Counters
		wantErr string
	}{
		{name: "committed offsets clamped to start and end", cfg: kafka.Config{OffsetResetPolicy: "latest"},
			parts: []kafka.Partition{p(0, 100, 40), p(60, 100, 40), p(0, 50, 70), p(none, 50, 50)},
			want:  sources.Counters{Produced: 300, Consumed: 200, Backlog: 100}},
		{name: "latest without a commit", cfg: kafka.Config{OffsetResetPolicy: "latest"},
			parts: []kafka.Partition{p(30, 100, none), p(5, 5, none)},
			want:  sources.Counters{Produced: 105, Consumed: 104, Backlog: 1}},
		{name: "earliest without a commit", cfg: kafka.Config{OffsetResetPolicy: "earliest"},
			parts: []kafka.Partition{p(30, 100, none), p(5, 5, none)},
			want:  sources.Counters{Produced: 105, Consumed: 35, Backlog: 70}},
		{name: "scaleToZeroOnInvalidOffset without a commit", cfg: kafka.Config{OffsetResetPolicy: "earliest", ScaleToZeroOnInvalidOffset: true},
			parts: []kafka.Partition{p(30, 100, none)},
			want:  sources.Counters{Produced: 100, Consumed: 100}},
		{name: "persistent lag is backlog", cfg: kafka.Config{OffsetResetPolicy: "latest", ExcludePersistentLag: true},
			parts: []kafka.Partition{{Topic: "orders", Start: 0, End: 100, Committed: 40, Previous: 40}},
			want:  sources.Counters{Produced: 100, Consumed: 40, Backlog: 60}},
		{name: "no partitions", cfg: kafka.Config{OffsetResetPolicy: "latest"}},
		{name: "produced overflows though nothing is waiting", cfg: kafka.Config{OffsetResetPolicy: "latest"},
			parts:   []kafka.Partition{p(0, math.MaxInt64, math.MaxInt64), p(0, math.MaxInt64, math.MaxInt64)},
			wantErr: `topic "orders" partition 0: the message count overflows int64`},
		{name: "an impossible offset", cfg: kafka.Config{OffsetResetPolicy: "latest"},
			parts: []kafka.Partition{p(20, 10, 5)}, wantErr: "start offset 20 above end offset 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cfg.Count(tt.parts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("counters %+v, err %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("counters %+v, err %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// End offsets that no lag overflows, because the group committed at them, can still make
// counts that overflow: an error for a backlog-age trigger, never a count; a threshold
// trigger, which reads no counts, is not affected.
func TestHostileOffsetsOverflowTheCounts(t *testing.T) {
	tests := []struct {
		name    string
		md      map[string]string
		wantErr []string
	}{
		{name: "backlog-age trigger", md: map[string]string{"targetBacklogAge": "30s"},
			wantErr: []string{`topic "orders" partition 1: the message count overflows int64`}},
		{name: "threshold trigger", md: map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newHostileFixture(t)
			for key, answer := range map[int16]answer{
				kmsg.ListOffsets.Int16(): listOffsetsAnswer(func(ts int64, p *kmsg.ListOffsetsResponseTopicPartition) {
					if ts == -1 {
						p.Offset = math.MaxInt64
					}
				}),
				kmsg.OffsetFetch.Int16(): offsetFetchAnswer(map[int32]int64{0: math.MaxInt64, 1: math.MaxInt64}),
			} {
				f.tc.ControlKey(key, func(req kmsg.Request) (kmsg.Response, error, bool) {
					f.tc.KeepControl()
					return answer(f, req), nil, true
				})
			}
			md := map[string]string{"bootstrapServers": f.tc.addrs, "consumerGroup": "g", "topic": "orders"}
			maps.Copy(md, tt.md)
			got := pollOnce(t, newPool(t), 5*time.Second, parse(t, md, nil))[0]
			sourcetest.WantSample(t, got, "", 0, false, tt.wantErr...)
			if got.Err == nil && got.Counters != nil {
				t.Errorf("a threshold trigger got counters %+v", *got.Counters)
			}
		})
	}
}
