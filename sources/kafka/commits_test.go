package kafka

import (
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// committed builds an OffsetFetch answer topic.
func committed(topic string, parts ...at) kmsg.OffsetFetchResponseGroupTopic {
	t := kmsg.NewOffsetFetchResponseGroupTopic()
	t.Topic = topic
	for _, a := range parts {
		p := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		p.Partition, p.Offset = a.id, a.offset
		t.Partitions = append(t.Partitions, p)
	}
	return t
}

func group(name string, code int16, topics ...kmsg.OffsetFetchResponseGroupTopic) kmsg.OffsetFetchResponseGroup {
	g := kmsg.NewOffsetFetchResponseGroup()
	g.Group, g.ErrorCode, g.Topics = name, code, topics
	return g
}

// fetchRequest asks for every committed offset of groups g1 and g2.
func fetchRequest() *kmsg.OffsetFetchRequest {
	req := kmsg.NewPtrOffsetFetchRequest()
	for _, g := range []string{"g1", "g2"} {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = g
		req.Groups = append(req.Groups, rg)
	}
	return req
}

func TestReadOffsetFetch(t *testing.T) {
	withCode := func(topic kmsg.OffsetFetchResponseGroupTopic, code int16) kmsg.OffsetFetchResponseGroupTopic {
		topic.Partitions[0].ErrorCode = code
		return topic
	}
	g2 := group("g2", 0, committed("audit", at{0, 3}))
	tests := []struct {
		name        string
		code        int16 // the answer's top-level error code
		groups      []kmsg.OffsetFetchResponseGroup
		wantTopics  map[string]map[string]map[int32]int64 // group → topic → offsets
		wantErrs    map[string]string                     // group → error
		wantTopicEr map[string]string                     // topic of g1 → error
	}{
		{name: "every group, -1 where there is no commit",
			groups: []kmsg.OffsetFetchResponseGroup{group("g1", 0, committed("orders", at{0, 5}, at{1, -1})), g2},
			wantTopics: map[string]map[string]map[int32]int64{
				"g1": {"orders": {0: 5, 1: NoOffset}}, "g2": {"audit": {0: 3}},
			}},
		{name: "a group missing",
			groups:     []kmsg.OffsetFetchResponseGroup{g2},
			wantTopics: map[string]map[string]map[int32]int64{"g2": {"audit": {0: 3}}},
			wantErrs:   map[string]string{"g1": "the broker's answer omits the group"}},
		{name: "a group twice",
			groups:     []kmsg.OffsetFetchResponseGroup{group("g1", 0), g2, group("g1", 0)},
			wantTopics: map[string]map[string]map[int32]int64{"g2": {"audit": {0: 3}}},
			wantErrs:   map[string]string{"g1": "the broker answered the group twice"}},
		{name: "a group not asked for fails them all",
			groups:   []kmsg.OffsetFetchResponseGroup{group("g1", 0), g2, group("g3", 0)},
			wantErrs: map[string]string{"g1": `answered group "g3", which was not asked for`, "g2": `group "g3"`}},
		{name: "a group's error",
			groups:     []kmsg.OffsetFetchResponseGroup{group("g1", kerr.GroupAuthorizationFailed.Code), g2},
			wantTopics: map[string]map[string]map[int32]int64{"g2": {"audit": {0: 3}}},
			wantErrs:   map[string]string{"g1": "GROUP_AUTHORIZATION_FAILED"}},
		{name: "the answer's error", code: kerr.CoordinatorNotAvailable.Code,
			groups:   []kmsg.OffsetFetchResponseGroup{group("g1", 0), g2},
			wantErrs: map[string]string{"g1": "COORDINATOR_NOT_AVAILABLE", "g2": "COORDINATOR_NOT_AVAILABLE"}},
		{name: "a topic without a name",
			groups:     []kmsg.OffsetFetchResponseGroup{group("g1", 0, committed("", at{0, 5})), g2},
			wantTopics: map[string]map[string]map[int32]int64{"g2": {"audit": {0: 3}}},
			wantErrs:   map[string]string{"g1": "a topic that has no name"}},
		{name: "a topic twice",
			groups:      []kmsg.OffsetFetchResponseGroup{group("g1", 0, committed("orders", at{0, 5}), committed("audit", at{0, 1}), committed("orders", at{1, 5})), g2},
			wantTopics:  map[string]map[string]map[int32]int64{"g1": {"audit": {0: 1}}, "g2": {"audit": {0: 3}}},
			wantTopicEr: map[string]string{"orders": "the broker answered the topic twice"}},
		{name: "a negative partition",
			groups:      []kmsg.OffsetFetchResponseGroup{group("g1", 0, committed("orders", at{0, 5}, at{-1, 5})), g2},
			wantTopics:  map[string]map[string]map[int32]int64{"g1": {}, "g2": {"audit": {0: 3}}},
			wantTopicEr: map[string]string{"orders": "the broker answered partition -1"}},
		{name: "partition 2147483647",
			groups:      []kmsg.OffsetFetchResponseGroup{group("g1", 0, committed("orders", at{0, 5}, at{2147483647, 5})), g2},
			wantTopics:  map[string]map[string]map[int32]int64{"g1": {}, "g2": {"audit": {0: 3}}},
			wantTopicEr: map[string]string{"orders": "partition 2147483647, beyond the 200000 partitions"}},
		{name: "a partition twice",
			groups:      []kmsg.OffsetFetchResponseGroup{group("g1", 0, committed("orders", at{1, 5}, at{1, 6})), g2},
			wantTopics:  map[string]map[string]map[int32]int64{"g1": {}, "g2": {"audit": {0: 3}}},
			wantTopicEr: map[string]string{"orders": "partition 1 twice"}},
		{name: "a committed offset below -1",
			groups:      []kmsg.OffsetFetchResponseGroup{group("g1", 0, committed("orders", at{0, 5}, at{1, -7})), g2},
			wantTopics:  map[string]map[string]map[int32]int64{"g1": {}, "g2": {"audit": {0: 3}}},
			wantTopicEr: map[string]string{"orders": "partition 1: the broker answered committed offset -7"}},
		{name: "a partition's error",
			groups:      []kmsg.OffsetFetchResponseGroup{group("g1", 0, withCode(committed("orders", at{0, 5}), kerr.UnstableOffsetCommit.Code)), g2},
			wantTopics:  map[string]map[string]map[int32]int64{"g1": {}, "g2": {"audit": {0: 3}}},
			wantTopicEr: map[string]string{"orders": "partition 0: UNSTABLE_OFFSET_COMMIT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := kmsg.NewPtrOffsetFetchResponse()
			resp.Version = resp.MaxVersion()
			resp.ErrorCode, resp.Groups = tt.code, tt.groups
			got := readOffsetFetch(fetchRequest(), resp)
			if len(got) != 2 {
				t.Fatalf("answer for %d groups, want 2: %v", len(got), got)
			}
			for g, c := range got {
				wantError(t, "group "+g, c.err, tt.wantErrs[g])
				if c.err == nil && !maps.EqualFunc(c.topics, tt.wantTopics[g], maps.Equal) {
					t.Errorf("group %s: commits = %v, want %v", g, c.topics, tt.wantTopics[g])
				}
			}
			if len(got["g1"].errs) != len(tt.wantTopicEr) {
				t.Errorf("topic errors of g1 = %v, want %d", got["g1"].errs, len(tt.wantTopicEr))
			}
			for topic, want := range tt.wantTopicEr {
				wantError(t, "g1 topic "+topic, got["g1"].errs[topic], want)
				if !slices.Contains(committedTopics(got["g1"]), topic) {
					t.Errorf("topic %s with an error is not in scope of a trigger without topics: %v", topic, committedTopics(got["g1"]))
				}
			}
		})
	}
}

// Below v8 an answer carries one group in top-level fields, for the one group asked.
func TestReadOffsetFetchOldStyle(t *testing.T) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = "g1"
	resp := kmsg.NewPtrOffsetFetchResponse()
	resp.Version = 7
	rt := kmsg.NewOffsetFetchResponseTopic()
	rt.Topic = "orders"
	for _, p := range []struct {
		id     int32
		offset int64
		code   int16
	}{{0, 5, 0}, {1, -1, 0}} {
		rp := kmsg.NewOffsetFetchResponseTopicPartition()
		rp.Partition, rp.Offset, rp.ErrorCode = p.id, p.offset, p.code
		rt.Partitions = append(rt.Partitions, rp)
	}
	resp.Topics = append(resp.Topics, rt)
	got := readOffsetFetch(req, resp)
	want := map[string]map[int32]int64{"orders": {0: 5, 1: NoOffset}}
	if c := got["g1"]; c.err != nil || !maps.EqualFunc(c.topics, want, maps.Equal) || len(got) != 1 {
		t.Errorf("commits = %+v, want g1: %v", got, want)
	}

	resp.ErrorCode = kerr.GroupIDNotFound.Code
	if err := readOffsetFetch(req, resp)["g1"].err; !errors.Is(err, kerr.GroupIDNotFound) {
		t.Errorf("err = %v, want GROUP_ID_NOT_FOUND", err)
	}
}
