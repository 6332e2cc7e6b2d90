package kafka

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// metadataMaxAge is how long the partition lists of topics are reused; it matches the
// client's own metadata refresh floor, so partitions added to a topic are seen as soon as the
// client itself would see them.
const metadataMaxAge = 5 * time.Second

// Offset listings are made here rather than with kadm.ListEndOffsets: that helper rebuilds
// full topic metadata (replicas, ISRs, maps) on every call, which dominated the cost of a poll
// of thousands of partitions. The request itself is still sharded and retried by kgo.

// topicMeta is what a poll needs to know of a topic: how many partitions it has (numbered 0
// to partitions-1), or why that is not known.
type topicMeta struct {
	partitions int32
	err        error
}

// topicPartitions returns the partitions of each topic, from metadata at most metadataMaxAge
// old.
func (s *Source) topicPartitions(ctx context.Context, topics []string) map[string]topicMeta {
	if time.Since(s.metaAt) > metadataMaxAge {
		s.meta, s.metaAt = map[string]topicMeta{}, time.Now()
	}
	var missing []string
	for _, t := range topics {
		if _, ok := s.meta[t]; !ok {
			missing = append(missing, t)
		}
	}
	if len(missing) == 0 {
		return s.meta
	}
	req := kmsg.NewPtrMetadataRequest()
	for _, t := range missing {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := s.cl.RequestCachedMetadata(ctx, req, metadataMaxAge)
	if err != nil {
		out := make(map[string]topicMeta, len(s.meta)+len(missing))
		maps.Copy(out, s.meta)
		for _, t := range missing {
			out[t] = topicMeta{err: fmt.Errorf("reading metadata: %w", err)} // not cached: retried next poll
		}
		return out
	}
	maps.Copy(s.meta, readMetadata(missing, resp))
	return s.meta
}

// forget drops a topic's cached partitions after a listing error, so the next poll asks again.
func (s *Source) forget(topic string) { delete(s.meta, topic) }

// listing holds one kind of offset (start or end) for whole topics.
type listing struct {
	byTopic map[string][]int64 // indexed by partition ID; every partition of the topic listed
	errs    map[string]error   // topics that could not be listed
}

func newListing() listing {
	return listing{byTopic: map[string][]int64{}, errs: map[string]error{}}
}

func (l *listing) has(topic string) bool {
	_, ok := l.byTopic[topic]
	_, failed := l.errs[topic]
	return ok || failed
}

func (l *listing) offset(topic string, partition int32) int64 {
	offs := l.byTopic[topic]
	if partition >= 0 && int(partition) < len(offs) {
		return offs[partition]
	}
	return NoOffset
}

// outdated reports whether a start offset listed for topic is above the end offset of its
// partition in ends, listed since: start offsets never pass end offsets, unless the topic was
// deleted and created again in between.
func (l *listing) outdated(topic string, ends []int64) bool {
	for p, start := range l.byTopic[topic] {
		if p < len(ends) && start > ends[p] {
			return true
		}
	}
	return false
}

func (l *listing) fail(topic string, err error) {
	if _, ok := l.errs[topic]; !ok {
		l.errs[topic] = err
	}
}

// list lists the start or end offsets of every partition of topics in one sharded request.
func (s *Source) list(ctx context.Context, meta map[string]topicMeta, topics []string, timestamp int64) listing {
	l := newListing()
	req := kmsg.NewPtrListOffsetsRequest()
	for _, t := range topics {
		m := meta[t]
		if m.err != nil {
			l.errs[t] = m.err
			continue
		}
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = t
		rt.Partitions = make([]kmsg.ListOffsetsRequestTopicPartition, m.partitions)
		offs := make([]int64, m.partitions)
		for i := range rt.Partitions {
			rt.Partitions[i] = kmsg.NewListOffsetsRequestTopicPartition()
			rt.Partitions[i].Partition = int32(i)
			rt.Partitions[i].Timestamp = timestamp
			offs[i] = NoOffset
		}
		req.Topics = append(req.Topics, rt)
		l.byTopic[t] = offs
	}
	if len(req.Topics) == 0 {
		return l
	}
	for _, shard := range s.cl.RequestSharded(ctx, req) {
		asked := shard.Req.(*kmsg.ListOffsetsRequest)
		if shard.Err != nil {
			for _, rt := range asked.Topics {
				l.fail(rt.Topic, fmt.Errorf("listing %s offsets: %w", offsetKind(timestamp), shard.Err))
			}
			continue
		}
		l.place(asked, readListOffsets(asked, shard.Resp.(*kmsg.ListOffsetsResponse)))
	}
	l.checkComplete()
	for t := range l.errs {
		delete(l.byTopic, t)
		s.forget(t)
	}
	return l
}

// place files the offsets of one answer under the partitions its request asked for.
func (l *listing) place(asked *kmsg.ListOffsetsRequest, a listAnswer) {
	for t, err := range a.errs {
		l.fail(t, err)
	}
	for _, rt := range asked.Topics {
		offs, ok := a.offsets[rt.Topic]
		dst := l.byTopic[rt.Topic]
		if !ok {
			continue
		}
		for i, p := range rt.Partitions {
			if p.Partition < 0 || int(p.Partition) >= len(dst) { // the client sharded more than was asked
				l.fail(rt.Topic, fmt.Errorf("partition %d was not asked for", p.Partition))
				break
			}
			dst[p.Partition] = offs[i]
		}
	}
}

// checkComplete fails the topics with a partition that no answer gave an offset for.
func (l *listing) checkComplete() {
	for t, offs := range l.byTopic {
		if _, failed := l.errs[t]; failed {
			continue
		}
		for p, o := range offs {
			if o == NoOffset {
				l.fail(t, fmt.Errorf("partition %d: no offset was listed", p))
				break
			}
		}
	}
}

// fetchCommits reads the committed offsets of every group in one OffsetFetch request per
// coordinator (v8+ carries many groups), as kadm.FetchManyOffsets does.
func (s *Source) fetchCommits(ctx context.Context, groups []string) map[string]commits {
	out := make(map[string]commits, len(groups))
	if len(groups) == 0 {
		return out
	}
	req := kmsg.NewPtrOffsetFetchRequest()
	for _, g := range groups {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = g
		req.Groups = append(req.Groups, rg)
	}
	for _, shard := range s.cl.RequestSharded(ctx, req) {
		asked := shard.Req.(*kmsg.OffsetFetchRequest)
		if shard.Err != nil {
			for _, g := range askedGroups(asked) {
				out[g] = commits{err: shard.Err}
			}
			continue
		}
		maps.Copy(out, readOffsetFetch(asked, shard.Resp.(*kmsg.OffsetFetchResponse)))
	}
	return out
}
