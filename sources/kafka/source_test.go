package kafka_test

import (
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

// lagFixture lays out offsets that exercise every per-partition rule:
//
//	orders p0: 10 records, start 6 (retention), group "workers" committed 4 → backlog 4
//	orders p1:  5 records, committed 5                                       → backlog 0
//	orders p2:  8 records, start 3, no commit  → latest 1, earliest 5
//	orders p3: empty, no commit                → 0 under either policy
//	audit  p0:  3 records, committed 1         → backlog 2
//
// "idle" has committed nothing anywhere.
func lagFixture(t *testing.T) *testCluster {
	t.Helper()
	tc := newCluster(t, kfake.SeedTopics(4, "orders"), kfake.SeedTopics(1, "audit"))
	tc.produce(t, "orders", map[int32]int{0: 10, 1: 5, 2: 8})
	tc.produce(t, "audit", map[int32]int{0: 3})
	tc.commit(t, "workers", "orders", map[int32]int64{0: 4, 1: 5})
	tc.commit(t, "workers", "audit", map[int32]int64{0: 1})
	tc.truncate(t, "orders", map[int32]int64{0: 6, 2: 3})
	return tc
}

func TestLagSemantics(t *testing.T) {
	tc := lagFixture(t)
	base := map[string]string{"bootstrapServers": tc.addrs, "consumerGroup": "workers", "topic": "orders"}
	with := func(kv ...string) map[string]string { return sourcetest.With(base, kv...) }
	tests := []struct {
		name       string
		md         map[string]string
		wantValue  float64
		wantActive bool
		wantWarn   bool   // a NoCommittedOffsets warning
		wantErr    string // substring of the error
	}{
		{name: "latest counts an uncommitted partition as 1, an empty one as 0", md: base, wantValue: 5, wantActive: true},
		{name: "earliest counts an uncommitted partition from its start offset", md: with("offsetResetPolicy", "earliest"), wantValue: 9, wantActive: true},
		{name: "scaleToZeroOnInvalidOffset with latest", md: with("scaleToZeroOnInvalidOffset", "true"), wantValue: 4, wantActive: true},
		{name: "scaleToZeroOnInvalidOffset with earliest", md: with("scaleToZeroOnInvalidOffset", "true", "offsetResetPolicy", "earliest"), wantValue: 4, wantActive: true},
		{name: "cap at partitions in scope", md: with("lagThreshold", "1"), wantValue: 4, wantActive: true},
		{name: "allowIdleConsumers lifts the cap", md: with("lagThreshold", "1", "allowIdleConsumers", "true"), wantValue: 5, wantActive: true},
		{name: "limitToPartitionsWithLag caps at partitions with backlog", md: with("lagThreshold", "1", "limitToPartitionsWithLag", "true"), wantValue: 2, wantActive: true},
		{name: "ensureEvenDistributionOfPartitions rounds up to a divisor", md: with("lagThreshold", "2", "ensureEvenDistributionOfPartitions", "true"), wantValue: 8, wantActive: true},
		{name: "activation threshold not exceeded", md: with("activationLagThreshold", "5"), wantValue: 5, wantActive: false},
		{name: "activation threshold exceeded", md: with("activationLagThreshold", "4"), wantValue: 5, wantActive: true},
		{name: "partitionLimitation list", md: with("partitionLimitation", "0,2"), wantValue: 5, wantActive: true},
		{name: "partitionLimitation range without backlog", md: with("partitionLimitation", "1-1,3"), wantValue: 0, wantActive: false},
		{name: "partitionLimitation matching nothing", md: with("partitionLimitation", "7-9"), wantErr: "matches no partition"},
		{name: "several topics", md: with("topic", "orders,audit"), wantValue: 7, wantActive: true},
		{name: "every committed topic when topic is empty", md: with("topic", ""), wantValue: 7, wantActive: true},
		{name: "group without commits on the topic", md: with("consumerGroup", "idle"), wantValue: 3, wantActive: true, wantWarn: true},
		{name: "group without commits and no topic", md: with("consumerGroup", "idle", "topic", ""), wantValue: 0, wantActive: false, wantWarn: true},
		{name: "unknown topic", md: with("topic", "nosuch"), wantErr: `topic "nosuch" does not exist`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pollOnce(t, newPool(t), 5*time.Second, parse(t, tt.md, nil))[0]
			if tt.wantErr != "" {
				if got.Err == nil || !strings.Contains(got.Err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", got.Err, tt.wantErr)
				}
				return
			}
			if got.Err != nil {
				t.Fatalf("unexpected error: %v", got.Err)
			}
			if got.Value != tt.wantValue || got.Active != tt.wantActive {
				t.Errorf("value, active = %v, %v; want %v, %v", got.Value, got.Active, tt.wantValue, tt.wantActive)
			}
			if warned := hasWarning(got, kafka.ReasonNoCommittedOffsets); warned != tt.wantWarn {
				t.Errorf("NoCommittedOffsets warning = %v, want %v (warnings %v)", warned, tt.wantWarn, got.Warnings)
			}
		})
	}
}

func hasWarning(s sources.Sample, reason string) bool {
	for _, w := range s.Warnings {
		if w.Reason == reason {
			return true
		}
	}
	return false
}

// One poll of several triggers with different semantics gives each its own answer, and a
// bad topic in one trigger does not fail the others.
func TestTriggersSharingAPollStayIndependent(t *testing.T) {
	tc := lagFixture(t)
	good := parse(t, map[string]string{"bootstrapServers": tc.addrs, "consumerGroup": "workers", "topic": "orders"}, nil)
	early := parse(t, map[string]string{"bootstrapServers": tc.addrs, "consumerGroup": "workers", "topic": "orders", "offsetResetPolicy": "earliest"}, nil)
	bad := parse(t, map[string]string{"bootstrapServers": tc.addrs, "consumerGroup": "workers", "topic": "typo"}, nil)
	got := pollOnce(t, newPool(t), 5*time.Second, good, bad, early)
	if got[0].Err != nil || got[0].Value != 5 {
		t.Errorf("good trigger: %v, %v; want 5", got[0].Value, got[0].Err)
	}
	if got[1].Err == nil {
		t.Errorf("trigger with an unknown topic: no error")
	}
	if got[2].Err != nil || got[2].Value != 9 {
		t.Errorf("earliest trigger: %v, %v; want 9", got[2].Value, got[2].Err)
	}
}

// excludePersistentLag: a partition whose committed offset did not move since the previous
// poll stops counting for scaling, but still counts for activation.
func TestExcludePersistentLag(t *testing.T) {
	tc := lagFixture(t)
	tr := parse(t, map[string]string{"bootstrapServers": tc.addrs, "consumerGroup": "workers", "topic": "orders", "excludePersistentLag": "true"}, nil)
	pool := newPool(t)
	steps := []struct {
		name       string
		before     func()
		wantValue  float64
		wantActive bool
	}{
		{name: "first poll counts everything", wantValue: 5, wantActive: true},
		{name: "stuck partition is excluded", wantValue: 1, wantActive: true},
		{name: "moving partition counts again", before: func() { tc.commit(t, "workers", "orders", map[int32]int64{0: 8, 1: 5}) }, wantValue: 3, wantActive: true},
	}
	for _, st := range steps {
		if st.before != nil {
			st.before()
		}
		got := pollOnce(t, pool, 5*time.Second, tr)[0]
		if got.Err != nil || got.Value != st.wantValue || got.Active != st.wantActive {
			t.Errorf("%s: value, active, err = %v, %v, %v; want %v, %v", st.name, got.Value, got.Active, got.Err, st.wantValue, st.wantActive)
		}
	}
}

// A group with live members is read the same way as one with only committed offsets.
func TestGroupWithLiveMembers(t *testing.T) {
	tc := newCluster(t, kfake.SeedTopics(2, "events"))
	tc.produce(t, "events", map[int32]int{0: 30, 1: 30})
	consumer, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(tc.addrs, ",")...),
		kgo.ConsumerGroup("live"), kgo.ConsumeTopics("events"), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	ctx := ctxT(t)
	fetched := 0
	for fetched < 10 {
		fs := consumer.PollRecords(ctx, 10-fetched)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume: %v", err)
		}
		fetched += fs.NumRecords()
	}
	// Commit 10 records' worth on partition 0 and all of partition 1.
	consumer.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{"events": {0: {Epoch: -1, Offset: 10}, 1: {Epoch: -1, Offset: 30}}},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				t.Errorf("commit: %v", err)
			}
		})
	tr := parse(t, map[string]string{"bootstrapServers": tc.addrs, "consumerGroup": "live", "topic": "events", "lagThreshold": "5"}, nil)
	got := pollOnce(t, newPool(t), 5*time.Second, tr)[0]
	if got.Err != nil || got.Value != 10 {
		t.Fatalf("value, err = %v, %v; want 10 (capped at 2 partitions × 5)", got.Value, got.Err)
	}
	tr = parse(t, map[string]string{"bootstrapServers": tc.addrs, "consumerGroup": "live", "topic": "events", "allowIdleConsumers": "true"}, nil)
	if got := pollOnce(t, newPool(t), 5*time.Second, tr)[0]; got.Err != nil || got.Value != 20 {
		t.Fatalf("value, err = %v, %v; want 20", got.Value, got.Err)
	}
}
