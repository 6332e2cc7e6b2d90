package kafka

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Every number a broker answers is untrusted: qscale polls the clusters that tenants name, and
// a broken or hostile broker must not crash it, exhaust its memory or pass for an idle topic.
// The functions here read one answer against the request it answers, as pure functions of
// both, so that they can be fuzzed directly; what they return is sized by what was asked (or,
// for a topic's partitions, by maxPartitions), never by a number the broker chose.

// maxPartitions is the most partitions qscale reads of one topic. Kafka's guidance for a whole
// ZooKeeper-era cluster was 200,000 partitions, and no single topic a workload consumes comes
// near it; a metadata answer for that many partitions is at most 10 MB at replication factor
// 3, well within maxResponseBytes.
// Kafka numbers the partitions of a topic 0 to n-1, so no partition ID reaches it either.
const maxPartitions = 200_000

// errNoTopic is the metadata error of a topic the cluster does not have.
var errNoTopic = errors.New("does not exist")

// readMetadata returns what a Metadata answer says of each topic in asked. Kafka lists every
// partition of a topic and numbers them 0 to n-1 (kgo refuses a topic answered otherwise), so
// a topic is its partition count; any other answer is an error for that topic. Topics that
// were not asked for are ignored.
func readMetadata(asked []string, resp *kmsg.MetadataResponse) map[string]topicMeta {
	out := make(map[string]topicMeta, len(asked))
	for _, t := range asked {
		out[t] = topicMeta{err: errors.New("the broker's metadata omits the topic")}
	}
	seen := make(map[string]bool, len(asked))
	for i := range resp.Topics {
		t := &resp.Topics[i]
		if t.Topic == nil {
			continue
		}
		name := *t.Topic
		if _, ok := out[name]; !ok {
			continue
		}
		if seen[name] {
			out[name] = topicMeta{err: errors.New("the broker's metadata lists the topic twice")}
			continue
		}
		seen[name] = true
		out[name] = metadataTopic(t)
	}
	return out
}

func metadataTopic(t *kmsg.MetadataResponseTopic) topicMeta {
	if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			err = errNoTopic
		}
		return topicMeta{err: err}
	}
	n := len(t.Partitions)
	switch {
	case n == 0:
		return topicMeta{err: errors.New("the broker's metadata lists no partitions")}
	case n > maxPartitions:
		return topicMeta{err: fmt.Errorf("the broker's metadata lists %d partitions, more than the %d qscale reads of one topic", n, maxPartitions)}
	}
	seen := make([]bool, n)
	for _, p := range t.Partitions {
		switch id := p.Partition; {
		case id < 0 || int(id) >= n:
			return topicMeta{err: fmt.Errorf("the broker's metadata lists partition %d in a topic of %d partitions", id, n)}
		case seen[id]:
			return topicMeta{err: fmt.Errorf("the broker's metadata lists partition %d twice", id)}
		default:
			seen[id] = true
		}
	}
	return topicMeta{partitions: int32(n)}
}

// listAnswer is what one ListOffsets answer says of the topics its request asked for: each
// topic either has an offset for every partition asked, or an error.
type listAnswer struct {
	offsets map[string][]int64 // per topic, in the order of the request's partitions; all ≥ 0
	errs    map[string]error
}

// readListOffsets reads a ListOffsets answer against its request. An error code fails the
// topic it is given for; so does a partition that was not asked for, answered twice or not at
// all, and a negative offset. A topic that was not asked for fails every topic, because the
// answer cannot be matched to its request.
func readListOffsets(req *kmsg.ListOffsetsRequest, resp *kmsg.ListOffsetsResponse) listAnswer {
	asked := make(map[string]*askedTopic, len(req.Topics))
	for _, rt := range req.Topics {
		asked[rt.Topic] = newAskedTopic(rt.Partitions)
	}
	a := listAnswer{offsets: make(map[string][]int64, len(asked)), errs: map[string]error{}}
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		at, ok := asked[rt.Topic]
		if !ok {
			err := fmt.Errorf("the broker answered topic %q, which was not asked for", rt.Topic)
			for t := range asked {
				a.errs[t] = err
			}
			return a
		}
		at.take(rt, resp.Version)
	}
	for t, at := range asked {
		if err := at.finish(); err != nil {
			a.errs[t] = err
		} else {
			a.offsets[t] = at.offsets
		}
	}
	return a
}

// askedTopic collects the answer for the partitions of one topic that a request asked for.
type askedTopic struct {
	parts    []kmsg.ListOffsetsRequestTopicPartition
	offsets  []int64       // by position in parts; NoOffset until answered
	index    map[int32]int // partition → position, built when the answer is not in request order
	answered bool
	err      error
}

func newAskedTopic(parts []kmsg.ListOffsetsRequestTopicPartition) *askedTopic {
	at := &askedTopic{parts: parts, offsets: make([]int64, len(parts))}
	for i := range at.offsets {
		at.offsets[i] = NoOffset
	}
	return at
}

func (at *askedTopic) take(rt *kmsg.ListOffsetsResponseTopic, version int16) {
	switch {
	case at.err != nil:
		return
	case at.answered:
		at.err = errors.New("the broker answered the topic twice")
		return
	}
	at.answered = true
	for j := range rt.Partitions {
		if at.err = at.takePartition(j, &rt.Partitions[j], version); at.err != nil {
			return
		}
	}
}

func (at *askedTopic) takePartition(j int, p *kmsg.ListOffsetsResponseTopicPartition, version int16) error {
	i, ok := at.position(j, p.Partition)
	if !ok {
		return fmt.Errorf("the broker answered partition %d, which was not asked for", p.Partition)
	}
	if at.offsets[i] != NoOffset {
		return fmt.Errorf("the broker answered partition %d twice", p.Partition)
	}
	kind := offsetKind(at.parts[i].Timestamp)
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return fmt.Errorf("partition %d: listing the %s offset: %w", p.Partition, kind, err)
	}
	offset := p.Offset
	if version == 0 { // v0 answers a list of offsets; one was asked for
		if len(p.OldStyleOffsets) != 1 {
			return fmt.Errorf("partition %d: the broker answered %d %s offsets for one", p.Partition, len(p.OldStyleOffsets), kind)
		}
		offset = p.OldStyleOffsets[0]
	}
	if offset < 0 {
		return fmt.Errorf("partition %d: the broker answered %s offset %d", p.Partition, kind, offset)
	}
	at.offsets[i] = offset
	return nil
}

// position returns where partition id, the j-th of the answer, is in the request. Brokers
// answer in request order, so the index is only built for an answer that is not.
func (at *askedTopic) position(j int, id int32) (int, bool) {
	if j < len(at.parts) && at.parts[j].Partition == id {
		return j, true
	}
	if at.index == nil {
		at.index = make(map[int32]int, len(at.parts))
		for i, p := range at.parts {
			at.index[p.Partition] = i
		}
	}
	i, ok := at.index[id]
	return i, ok
}

func (at *askedTopic) finish() error {
	switch {
	case at.err != nil:
		return at.err
	case !at.answered:
		return errors.New("the broker's answer omits the topic")
	}
	for i, o := range at.offsets {
		if o == NoOffset {
			return fmt.Errorf("partition %d: the broker's answer omits the partition", at.parts[i].Partition)
		}
	}
	return nil
}

const (
	endOffsets   = -1 // ListOffsets timestamp for the high watermark
	startOffsets = -2 // ListOffsets timestamp for the log start offset
)

// offsetKind names the offset that a ListOffsets timestamp asks for, in errors.
func offsetKind(timestamp int64) string {
	switch timestamp {
	case endOffsets:
		return "end"
	case startOffsets:
		return "start"
	}
	return "listed"
}
