package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metadataMaxAge is how long the partition lists of topics are reused; it matches the
// client's own metadata refresh floor, so partitions added to a topic are seen as soon as the
// client itself would see them.
const metadataMaxAge = 5 * time.Second

// Offset listings are made here rather than with kadm.ListEndOffsets: that helper rebuilds
// full topic metadata (replicas, ISRs, maps) on every call, which dominated the cost of a poll
// of thousands of partitions. The request itself is still sharded and retried by kgo.

// topicMeta is what a poll needs to know of a topic: its partition IDs, or why it has none.
type topicMeta struct {
	partitions []int32
	err        error
}

var errNoTopic = errors.New("does not exist")

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
		for t, m := range s.meta {
			out[t] = m
		}
		for _, t := range missing {
			out[t] = topicMeta{err: fmt.Errorf("reading metadata: %w", err)} // not cached: retried next poll
		}
		return out
	}
	for _, t := range resp.Topics {
		if t.Topic == nil {
			continue
		}
		m := topicMeta{err: kerr.ErrorForCode(t.ErrorCode)}
		if errors.Is(m.err, kerr.UnknownTopicOrPartition) {
			m.err = errNoTopic
		}
		for _, p := range t.Partitions {
			m.partitions = append(m.partitions, p.Partition)
		}
		s.meta[*t.Topic] = m
	}
	for _, t := range missing {
		if _, ok := s.meta[t]; !ok {
			s.meta[t] = topicMeta{err: errNoTopic}
		}
	}
	return s.meta
}

// forget drops a topic's cached partitions after a listing error, so the next poll asks again.
func (s *Source) forget(topic string) { delete(s.meta, topic) }

// listing holds one kind of offset (start or end) for whole topics.
type listing struct {
	byTopic map[string][]int64 // indexed by partition ID; NoOffset where not listed
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
	if int(partition) < len(offs) {
		return offs[partition]
	}
	return NoOffset
}

func (l *listing) fail(topic string, err error) {
	if _, ok := l.errs[topic]; !ok {
		l.errs[topic] = err
	}
}

const (
	endOffsets   = -1 // ListOffsets timestamp for the high watermark
	startOffsets = -2 // ListOffsets timestamp for the log start offset
)

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
		rt.Partitions = make([]kmsg.ListOffsetsRequestTopicPartition, len(m.partitions))
		size := 0
		for i, p := range m.partitions {
			rt.Partitions[i] = kmsg.NewListOffsetsRequestTopicPartition()
			rt.Partitions[i].Partition = p
			rt.Partitions[i].Timestamp = timestamp
			size = max(size, int(p)+1)
		}
		req.Topics = append(req.Topics, rt)
		offs := make([]int64, size)
		for i := range offs {
			offs[i] = NoOffset
		}
		l.byTopic[t] = offs
	}
	if len(req.Topics) == 0 {
		return l
	}
	for _, shard := range s.cl.RequestSharded(ctx, req) {
		if shard.Err != nil {
			for _, rt := range shard.Req.(*kmsg.ListOffsetsRequest).Topics {
				l.fail(rt.Topic, shard.Err)
			}
			continue
		}
		for _, rt := range shard.Resp.(*kmsg.ListOffsetsResponse).Topics {
			offs := l.byTopic[rt.Topic]
			for _, rp := range rt.Partitions {
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					l.fail(rt.Topic, fmt.Errorf("partition %d: %w", rp.Partition, err))
					continue
				}
				if int(rp.Partition) < len(offs) {
					offs[rp.Partition] = rp.Offset
				}
			}
		}
	}
	for t := range l.errs {
		delete(l.byTopic, t)
		s.forget(t)
	}
	return l
}

// commits is one group's committed offsets: per topic, indexed by partition ID, NoOffset
// where the group has none.
type commits struct {
	topics map[string][]int64
	errs   map[string]error // topics with a partition the broker could not answer for
	err    error            // the group as a whole could not be read
}

func (c commits) offset(topic string, partition int32) int64 {
	offs := c.topics[topic]
	if int(partition) < len(offs) {
		return offs[partition]
	}
	return NoOffset
}

// fetchCommits reads the committed offsets of every group in one OffsetFetch request per
// coordinator (v8+ carries many groups), as kadm.FetchManyOffsets does, into compact slices.
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
		err := shard.Err
		if err == nil {
			err = kerr.ErrorForCode(shard.Resp.(*kmsg.OffsetFetchResponse).ErrorCode)
		}
		if err != nil {
			for _, g := range shard.Req.(*kmsg.OffsetFetchRequest).Groups {
				out[g.Group] = commits{err: err}
			}
			continue
		}
		for _, g := range shard.Resp.(*kmsg.OffsetFetchResponse).Groups {
			out[g.Group] = groupCommits(g)
		}
	}
	return out
}

func groupCommits(g kmsg.OffsetFetchResponseGroup) commits {
	c := commits{topics: make(map[string][]int64, len(g.Topics)), errs: map[string]error{}, err: kerr.ErrorForCode(g.ErrorCode)}
	for _, t := range g.Topics {
		size := 0
		for _, p := range t.Partitions {
			size = max(size, int(p.Partition)+1)
		}
		offs := make([]int64, size)
		for i := range offs {
			offs[i] = NoOffset
		}
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				if _, ok := c.errs[t.Topic]; !ok {
					c.errs[t.Topic] = fmt.Errorf("partition %d: %w", p.Partition, err)
				}
				continue
			}
			if p.Partition >= 0 && p.Offset >= 0 {
				offs[p.Partition] = p.Offset
			}
		}
		c.topics[t.Topic] = offs
	}
	return c
}
