package kafka

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// wantError checks err: nil when want is empty, otherwise an error containing want.
func wantError(t *testing.T, what string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s: unexpected error: %v", what, err)
	case want != "" && err == nil:
		t.Errorf("%s: no error, want one containing %q", what, want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("%s: error %q does not contain %q", what, err, want)
	}
}

func mdTopic(name string, code int16, ids ...int32) kmsg.MetadataResponseTopic {
	t := kmsg.NewMetadataResponseTopic()
	t.Topic, t.ErrorCode = kmsg.StringPtr(name), code
	for _, id := range ids {
		p := kmsg.NewMetadataResponseTopicPartition()
		p.Partition = id
		t.Partitions = append(t.Partitions, p)
	}
	return t
}

func TestReadMetadata(t *testing.T) {
	tooMany := make([]int32, maxPartitions+1)
	for i := range tooMany {
		tooMany[i] = int32(i)
	}
	nameless := mdTopic("", 0, 0)
	nameless.Topic = nil
	tests := []struct {
		name           string
		topics         []kmsg.MetadataResponseTopic
		wantPartitions int32
		wantErr        string
	}{
		{name: "partitions 0 to n-1, in any order", topics: []kmsg.MetadataResponseTopic{mdTopic("orders", 0, 2, 0, 1)}, wantPartitions: 3},
		{name: "topics not asked for and topics without a name are ignored",
			topics:         []kmsg.MetadataResponseTopic{nameless, mdTopic("other", 0, -1, 99), mdTopic("orders", 0, 0)},
			wantPartitions: 1},
		{name: "unknown topic", topics: []kmsg.MetadataResponseTopic{mdTopic("orders", kerr.UnknownTopicOrPartition.Code)}, wantErr: "does not exist"},
		{name: "topic error", topics: []kmsg.MetadataResponseTopic{mdTopic("orders", kerr.TopicAuthorizationFailed.Code)}, wantErr: "TOPIC_AUTHORIZATION_FAILED"},
		{name: "topic missing", topics: []kmsg.MetadataResponseTopic{mdTopic("other", 0, 0)}, wantErr: "the broker's metadata omits the topic"},
		{name: "topic twice", topics: []kmsg.MetadataResponseTopic{mdTopic("orders", 0, 0), mdTopic("orders", 0, 0)}, wantErr: "lists the topic twice"},
		{name: "no partitions", topics: []kmsg.MetadataResponseTopic{mdTopic("orders", 0)}, wantErr: "lists no partitions"},
		{name: "a negative partition", topics: []kmsg.MetadataResponseTopic{mdTopic("orders", 0, 0, -1)}, wantErr: "lists partition -1 in a topic of 2 partitions"},
		{name: "partition 50,000,000", topics: []kmsg.MetadataResponseTopic{mdTopic("orders", 0, 0, 1, 50_000_000)}, wantErr: "lists partition 50000000 in a topic of 3 partitions"},
		{name: "partition 2147483647", topics: []kmsg.MetadataResponseTopic{mdTopic("orders", 0, 2147483647)}, wantErr: "lists partition 2147483647 in a topic of 1 partitions"},
		{name: "a partition twice", topics: []kmsg.MetadataResponseTopic{mdTopic("orders", 0, 0, 0)}, wantErr: "lists partition 0 twice"},
		{name: "more partitions than qscale reads", topics: []kmsg.MetadataResponseTopic{mdTopic("orders", 0, tooMany...)}, wantErr: "lists 200001 partitions, more than the 200000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := kmsg.NewPtrMetadataResponse()
			resp.Topics = tt.topics
			got := readMetadata([]string{"orders"}, resp)
			if len(got) != 1 {
				t.Fatalf("answer for %d topics, want 1: %v", len(got), got)
			}
			m := got["orders"]
			wantError(t, "orders", m.err, tt.wantErr)
			if m.partitions != tt.wantPartitions {
				t.Errorf("partitions = %d, want %d", m.partitions, tt.wantPartitions)
			}
		})
	}
}

// at is a partition and its offset in an answer.
type at struct {
	id     int32
	offset int64
}

// listed builds a ListOffsets answer topic.
func listed(topic string, parts ...at) kmsg.ListOffsetsResponseTopic {
	t := kmsg.NewListOffsetsResponseTopic()
	t.Topic = topic
	for _, a := range parts {
		p := kmsg.NewListOffsetsResponseTopicPartition()
		p.Partition, p.Offset = a.id, a.offset
		t.Partitions = append(t.Partitions, p)
	}
	return t
}

// listRequest asks for the end offsets of orders 0 and 1 and the start offset of audit 0.
func listRequest() *kmsg.ListOffsetsRequest {
	req := kmsg.NewPtrListOffsetsRequest()
	for _, tp := range []struct {
		topic     string
		ids       []int32
		timestamp int64
	}{{"orders", []int32{0, 1}, endOffsets}, {"audit", []int32{0}, startOffsets}} {
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = tp.topic
		for _, id := range tp.ids {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp = id, tp.timestamp
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	return req
}

func TestReadListOffsets(t *testing.T) {
	withCode := func(topic kmsg.ListOffsetsResponseTopic, code int16) kmsg.ListOffsetsResponseTopic {
		topic.Partitions[0].ErrorCode = code
		return topic
	}
	// oldStyle moves each offset into the list of offsets that version 0 answers.
	oldStyle := func(topic kmsg.ListOffsetsResponseTopic, extra ...int64) kmsg.ListOffsetsResponseTopic {
		for i := range topic.Partitions {
			p := &topic.Partitions[i]
			p.OldStyleOffsets, p.Offset = append([]int64{p.Offset}, extra...), -1
		}
		return topic
	}
	audit := listed("audit", at{0, 3})
	tests := []struct {
		name        string
		v0          bool // answered at version 0, else at the newest
		topics      []kmsg.ListOffsetsResponseTopic
		wantOffsets map[string][]int64
		wantErrs    map[string]string
	}{
		{name: "every partition, in request order", topics: []kmsg.ListOffsetsResponseTopic{listed("orders", at{0, 10}, at{1, 20}), audit},
			wantOffsets: map[string][]int64{"orders": {10, 20}, "audit": {3}}},
		{name: "every partition, out of order", topics: []kmsg.ListOffsetsResponseTopic{audit, listed("orders", at{1, 20}, at{0, 10})},
			wantOffsets: map[string][]int64{"orders": {10, 20}, "audit": {3}}},
		{name: "version 0 answers a list of one offset", v0: true, topics: []kmsg.ListOffsetsResponseTopic{oldStyle(listed("orders", at{0, 10}, at{1, 20})), oldStyle(listed("audit", at{0, 4}))},
			wantOffsets: map[string][]int64{"orders": {10, 20}, "audit": {4}}},
		{name: "version 0 with two offsets for one", v0: true, topics: []kmsg.ListOffsetsResponseTopic{oldStyle(listed("orders", at{0, 10}, at{1, 20})), oldStyle(listed("audit", at{0, 9}), 4)},
			wantOffsets: map[string][]int64{"orders": {10, 20}}, wantErrs: map[string]string{"audit": "partition 0: the broker answered 2 start offsets for one"}},
		{name: "a negative partition", topics: []kmsg.ListOffsetsResponseTopic{listed("orders", at{-1, 10}, at{1, 20}), audit},
			wantOffsets: map[string][]int64{"audit": {3}}, wantErrs: map[string]string{"orders": "the broker answered partition -1, which was not asked for"}},
		{name: "partition 2147483647", topics: []kmsg.ListOffsetsResponseTopic{listed("orders", at{0, 10}, at{2147483647, 20}), audit},
			wantOffsets: map[string][]int64{"audit": {3}}, wantErrs: map[string]string{"orders": "partition 2147483647, which was not asked for"}},
		{name: "a partition twice", topics: []kmsg.ListOffsetsResponseTopic{listed("orders", at{0, 10}, at{0, 10}, at{1, 20}), audit},
			wantOffsets: map[string][]int64{"audit": {3}}, wantErrs: map[string]string{"orders": "partition 0 twice"}},
		{name: "a partition missing", topics: []kmsg.ListOffsetsResponseTopic{listed("orders", at{0, 10}), audit},
			wantOffsets: map[string][]int64{"audit": {3}}, wantErrs: map[string]string{"orders": "partition 1: the broker's answer omits the partition"}},
		{name: "a topic missing", topics: []kmsg.ListOffsetsResponseTopic{audit},
			wantOffsets: map[string][]int64{"audit": {3}}, wantErrs: map[string]string{"orders": "the broker's answer omits the topic"}},
		{name: "a topic twice", topics: []kmsg.ListOffsetsResponseTopic{listed("orders", at{0, 10}, at{1, 20}), audit, listed("orders", at{0, 10}, at{1, 20})},
			wantOffsets: map[string][]int64{"audit": {3}}, wantErrs: map[string]string{"orders": "answered the topic twice"}},
		{name: "a topic not asked for fails them all", topics: []kmsg.ListOffsetsResponseTopic{listed("orders", at{0, 10}, at{1, 20}), audit, listed("other", at{0, 1})},
			wantErrs: map[string]string{"orders": `answered topic "other", which was not asked for`, "audit": `answered topic "other"`}},
		{name: "end offset -1", topics: []kmsg.ListOffsetsResponseTopic{listed("orders", at{0, 10}, at{1, -1}), audit},
			wantOffsets: map[string][]int64{"audit": {3}}, wantErrs: map[string]string{"orders": "partition 1: the broker answered end offset -1"}},
		{name: "a negative start offset", topics: []kmsg.ListOffsetsResponseTopic{listed("orders", at{0, 10}, at{1, 20}), listed("audit", at{0, -5})},
			wantOffsets: map[string][]int64{"orders": {10, 20}}, wantErrs: map[string]string{"audit": "partition 0: the broker answered start offset -5"}},
		{name: "an error code", topics: []kmsg.ListOffsetsResponseTopic{withCode(listed("orders", at{0, 10}, at{1, 20}), kerr.NotLeaderForPartition.Code), audit},
			wantOffsets: map[string][]int64{"audit": {3}}, wantErrs: map[string]string{"orders": "partition 0: listing the end offset: NOT_LEADER_FOR_PARTITION"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := kmsg.NewPtrListOffsetsResponse()
			resp.Version = resp.MaxVersion()
			if tt.v0 {
				resp.Version = 0
			}
			resp.Topics = tt.topics
			got := readListOffsets(listRequest(), resp)
			if !maps.EqualFunc(got.offsets, tt.wantOffsets, slices.Equal) {
				t.Errorf("offsets = %v, want %v", got.offsets, tt.wantOffsets)
			}
			if len(got.errs) != len(tt.wantErrs) {
				t.Errorf("errors = %v, want %d", got.errs, len(tt.wantErrs))
			}
			for topic, want := range tt.wantErrs {
				wantError(t, topic, got.errs[topic], want)
			}
		})
	}
	t.Run("an error code is the broker's error", func(t *testing.T) {
		resp := kmsg.NewPtrListOffsetsResponse()
		resp.Topics = []kmsg.ListOffsetsResponseTopic{withCode(listed("orders", at{0, 10}, at{1, 20}), kerr.NotLeaderForPartition.Code), audit}
		if err := readListOffsets(listRequest(), resp).errs["orders"]; !errors.Is(err, kerr.NotLeaderForPartition) {
			t.Errorf("err = %v, want NOT_LEADER_FOR_PARTITION", err)
		}
	})
}
