package kafka

import (
	"math"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The fuzz targets decode arbitrary bytes as a broker's answer, at any version kmsg knows,
// and check that reading it against a fixed request never panics and returns either an error
// or offsets that a broker can hold, for what was asked only. testdata/fuzz keeps inputs
// found so far: answers whose tagged-field counts made kmsg v1.15.0 spin for seconds.

// encode returns r's wire form at version v.
func encode(r kmsg.Response, v int16) []byte {
	r.SetVersion(v)
	return r.AppendTo(nil)
}

// decode reads data as r at the version chosen by the fuzzer, reporting whether it parsed.
func decode(r kmsg.Response, version uint8, data []byte) bool {
	r.SetVersion(int16(version) % (r.MaxVersion() + 1))
	return r.ReadFrom(data) == nil
}

func FuzzReadMetadata(f *testing.F) {
	seeds := []struct {
		version uint8
		topics  []kmsg.MetadataResponseTopic
	}{
		{1, []kmsg.MetadataResponseTopic{mdTopic("orders", 0, 0, 1, 2), mdTopic("audit", 0, 0)}},
		{12, []kmsg.MetadataResponseTopic{mdTopic("orders", 0, 1, 0), mdTopic("audit", 3)}},
		{9, []kmsg.MetadataResponseTopic{mdTopic("orders", 0, 0, -1)}},
		{9, []kmsg.MetadataResponseTopic{mdTopic("orders", 0, 0, 50_000_000), mdTopic("audit", 0, math.MaxInt32)}},
		{13, []kmsg.MetadataResponseTopic{mdTopic("orders", 0, 0, 0), mdTopic("orders", 0, 0)}},
		{5, []kmsg.MetadataResponseTopic{mdTopic("audit", 0)}},
	}
	for _, s := range seeds {
		resp := kmsg.NewPtrMetadataResponse()
		resp.Topics = s.topics
		f.Add(s.version, encode(resp, int16(s.version)))
	}
	asked := []string{"orders", "audit"}
	f.Fuzz(func(t *testing.T, version uint8, data []byte) {
		resp := kmsg.NewPtrMetadataResponse()
		if !decode(resp, version, data) {
			return
		}
		got := readMetadata(asked, resp)
		answered := 0
		for _, rt := range resp.Topics {
			answered += len(rt.Partitions)
		}
		if len(got) != len(asked) {
			t.Fatalf("answer for %d topics, %d asked", len(got), len(asked))
		}
		for _, name := range asked {
			m, ok := got[name]
			switch {
			case !ok:
				t.Fatalf("no answer for topic %q", name)
			case m.err == nil && (m.partitions < 1 || m.partitions > maxPartitions || int(m.partitions) > answered):
				t.Fatalf("topic %q: %d partitions from %d answered", name, m.partitions, answered)
			}
		}
	})
}

func FuzzReadListOffsets(f *testing.F) {
	withCode := func(topic kmsg.ListOffsetsResponseTopic, code int16) kmsg.ListOffsetsResponseTopic {
		topic.Partitions[0].ErrorCode = code
		return topic
	}
	old := listed("audit", at{0, -1})
	old.Partitions[0].OldStyleOffsets = []int64{7}
	seeds := []struct {
		version uint8
		topics  []kmsg.ListOffsetsResponseTopic
	}{
		{1, []kmsg.ListOffsetsResponseTopic{listed("orders", at{0, 10}, at{1, 20}), listed("audit", at{0, 3})}},
		{11, []kmsg.ListOffsetsResponseTopic{listed("audit", at{0, 3}), listed("orders", at{1, 20}, at{0, 10})}},
		{0, []kmsg.ListOffsetsResponseTopic{old}},
		{6, []kmsg.ListOffsetsResponseTopic{listed("orders", at{-1, 10}, at{1, 20})}},
		{6, []kmsg.ListOffsetsResponseTopic{listed("orders", at{0, 10}, at{math.MaxInt32, 20}), listed("audit", at{0, 3}, at{0, 3})}},
		{4, []kmsg.ListOffsetsResponseTopic{listed("orders", at{0, -1}, at{1, math.MaxInt64}), listed("other", at{0, 1})}},
		{5, []kmsg.ListOffsetsResponseTopic{withCode(listed("orders", at{0, 10}, at{1, 20}), 6), listed("audit", at{0, -2})}},
		{7, nil},
	}
	for _, s := range seeds {
		resp := kmsg.NewPtrListOffsetsResponse()
		resp.Topics = s.topics
		f.Add(s.version, encode(resp, int16(s.version)))
	}
	f.Fuzz(func(t *testing.T, version uint8, data []byte) {
		resp := kmsg.NewPtrListOffsetsResponse()
		if !decode(resp, version, data) {
			return
		}
		req := listRequest()
		got := readListOffsets(req, resp)
		if len(got.offsets)+len(got.errs) != len(req.Topics) {
			t.Fatalf("offsets for %d topics and errors for %d, %d asked", len(got.offsets), len(got.errs), len(req.Topics))
		}
		for _, rt := range req.Topics {
			offs, ok := got.offsets[rt.Topic]
			_, failed := got.errs[rt.Topic]
			switch {
			case ok == failed:
				t.Fatalf("topic %q: offsets %v and error %v", rt.Topic, offs, got.errs[rt.Topic])
			case ok && len(offs) != len(rt.Partitions):
				t.Fatalf("topic %q: %d offsets for %d partitions asked", rt.Topic, len(offs), len(rt.Partitions))
			case slices.ContainsFunc(offs, func(o int64) bool { return o < 0 }):
				t.Fatalf("topic %q: a negative offset in %v", rt.Topic, offs)
			}
		}
	})
}

// fuzzTopicID is the ID of topic "orders" in OffsetFetch answers of v10+, which name topics
// by ID only; kgo names them from its metadata before qscale reads the answer.
var fuzzTopicID = [16]byte{1}

func FuzzReadOffsetFetch(f *testing.F) {
	byID := committed("", at{0, 5}, at{1, -1})
	byID.TopicID = fuzzTopicID
	seeds := []struct {
		version uint8
		groups  []kmsg.OffsetFetchResponseGroup
	}{
		{8, []kmsg.OffsetFetchResponseGroup{group("g1", 0, committed("orders", at{0, 5}, at{1, -1})), group("g2", 0, committed("audit", at{0, 3}))}},
		{10, []kmsg.OffsetFetchResponseGroup{group("g1", 0, byID), group("g2", 15)}},
		{9, []kmsg.OffsetFetchResponseGroup{group("g1", 0, committed("orders", at{-1, 5}, at{math.MaxInt32, 5})), group("g2", 0, committed("audit", at{0, -7}))}},
		{8, []kmsg.OffsetFetchResponseGroup{group("g1", 0, committed("orders", at{1, 5}, at{1, 6}), committed("orders", at{0, 1})), group("g3", 0)}},
		{8, []kmsg.OffsetFetchResponseGroup{group("g2", 0), group("g2", 0)}},
	}
	for _, s := range seeds {
		resp := kmsg.NewPtrOffsetFetchResponse()
		resp.Groups = s.groups
		f.Add(s.version, encode(resp, int16(s.version)))
	}
	oldStyle := kmsg.NewPtrOffsetFetchResponse()
	rt := kmsg.NewOffsetFetchResponseTopic()
	rt.Topic = "orders"
	rt.Partitions = []kmsg.OffsetFetchResponseTopicPartition{{Partition: 0, Offset: 5}, {Partition: -3, Offset: 5}}
	oldStyle.Topics = append(oldStyle.Topics, rt)
	f.Add(uint8(5), encode(oldStyle, 5))
	f.Fuzz(func(t *testing.T, version uint8, data []byte) {
		resp := kmsg.NewPtrOffsetFetchResponse()
		if !decode(resp, version, data) {
			return
		}
		req := fetchRequest()
		if resp.Version < 8 {
			req = kmsg.NewPtrOffsetFetchRequest()
			req.Group = "g1"
		}
		nameTopics(resp)
		got := readOffsetFetch(req, resp)
		checkCommits(t, askedGroups(req), got, answeredPartitions(resp))
	})
}

// nameTopics does what kgo does to a v10+ answer: it names the topics it knows by ID.
func nameTopics(resp *kmsg.OffsetFetchResponse) {
	for i := range resp.Groups {
		for j := range resp.Groups[i].Topics {
			if t := &resp.Groups[i].Topics[j]; t.TopicID == fuzzTopicID {
				t.Topic = "orders"
			}
		}
	}
}

func answeredPartitions(resp *kmsg.OffsetFetchResponse) int {
	n := 0
	for _, t := range resp.Topics {
		n += len(t.Partitions)
	}
	for _, g := range resp.Groups {
		for _, t := range g.Topics {
			n += len(t.Partitions)
		}
	}
	return n
}

// checkCommits checks what readOffsetFetch returned: one entry per group asked, and offsets
// that a broker can hold, no more of them than the answer held.
func checkCommits(t *testing.T, asked []string, got map[string]commits, answered int) {
	t.Helper()
	if len(got) != len(asked) {
		t.Fatalf("answer for %d groups, %d asked", len(got), len(asked))
	}
	stored := 0
	for _, g := range asked {
		c, ok := got[g]
		if !ok {
			t.Fatalf("no answer for group %q", g)
		}
		for topic, offs := range c.topics {
			if _, failed := c.errs[topic]; failed || topic == "" {
				t.Fatalf("group %q: topic %q both read and failed, or without a name", g, topic)
			}
			for p, at := range offs {
				if p < 0 || p >= maxPartitions || at < NoOffset {
					t.Fatalf("group %q topic %q: partition %d at %d", g, topic, p, at)
				}
			}
			stored += len(offs)
		}
		for topic := range c.errs {
			if !slices.Contains(committedTopics(c), topic) {
				t.Fatalf("group %q: topic %q failed but is out of scope", g, topic)
			}
		}
	}
	if stored > answered {
		t.Fatalf("%d offsets kept from %d answered", stored, answered)
	}
}

func FuzzCompute(f *testing.F) {
	f.Add(int64(0), int64(10), int64(5), int64(NoOffset), int64(NoOffset), int64(20), int64(NoOffset), int64(NoOffset), uint8(0))
	f.Add(int64(0), int64(math.MaxInt64), int64(5), int64(5), int64(0), int64(math.MaxInt64), int64(0), int64(NoOffset), uint8(0b1111))
	f.Add(int64(20), int64(10), int64(5), int64(NoOffset), int64(-4), int64(-1), int64(-9), int64(-9), uint8(0b10))
	f.Add(int64(NoOffset), int64(0), int64(NoOffset), int64(NoOffset), int64(NoOffset), int64(math.MaxInt64), int64(math.MaxInt64), int64(NoOffset), uint8(0))
	f.Fuzz(func(t *testing.T, s1, e1, c1, p1, s2, e2, c2, p2 int64, flags uint8) {
		cfg := &Config{
			LagThreshold:                       10,
			OffsetResetPolicy:                  []string{"latest", "earliest"}[flags&1],
			ExcludePersistentLag:               flags&2 != 0,
			ScaleToZeroOnInvalidOffset:         flags&4 != 0,
			AllowIdleConsumers:                 flags&8 != 0,
			LimitToPartitionsWithLag:           flags&16 != 0 && flags&8 == 0,
			EnsureEvenDistributionOfPartitions: flags&32 != 0 && flags&8 == 0,
		}
		parts := []Partition{
			{Topic: "orders", ID: 0, Start: s1, End: e1, Committed: c1, Previous: p1},
			{Topic: "orders", ID: 1, Start: s2, End: e2, Committed: c2, Previous: p2},
		}
		l, err := cfg.Compute(parts)
		if err != nil {
			return
		}
		for _, p := range parts {
			if p.check() != nil {
				t.Fatalf("computed over impossible offsets %+v", p)
			}
		}
		if l.Value < 0 || math.IsInf(l.Value, 0) || math.IsNaN(l.Value) || l.Backlog < 0 || l.WithLag > l.Partitions {
			t.Fatalf("lag %+v", l)
		}
		if !cfg.AllowIdleConsumers && l.Value > float64(l.Partitions)*cfg.LagThreshold {
			t.Fatalf("value %v above the cap of %d partitions", l.Value, l.Partitions)
		}
		checkCount(t, cfg, parts, l)
	})
}

// checkCount checks the counts of partitions whose lag is l: when they do not overflow,
// nothing is consumed that was not produced, and what was not consumed is the backlog.
func checkCount(t *testing.T, cfg *Config, parts []Partition, l Lag) {
	t.Helper()
	c, err := cfg.Count(parts)
	if err != nil {
		return
	}
	var produced, consumed int64
	for _, p := range parts {
		_, total := cfg.backlog(p)
		produced += p.End
		consumed += max(0, p.End-total)
	}
	if c.Backlog != float64(l.Backlog) || c.Produced != float64(produced) || c.Consumed != float64(consumed) ||
		consumed > produced || consumed < 0 || produced-consumed != l.Backlog {
		t.Fatalf("counts %+v of lag %+v (%d produced, %d consumed)", c, l, produced, consumed)
	}
}
