package kafka

import (
	"errors"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// commits is one group's committed offsets, as one OffsetFetch answer gave them.
type commits struct {
	// topics holds, per topic, the offset of each partition answered: ≥ 0, or NoOffset where
	// the group has none. The map is sized by the answer, never by a partition ID.
	topics map[string]map[int32]int64
	errs   map[string]error // topics the broker could not answer for, or answered wrongly
	err    error            // the group as a whole could not be read
}

func (c commits) offset(topic string, partition int32) int64 {
	if at, ok := c.topics[topic][partition]; ok {
		return at
	}
	return NoOffset
}

// committedTopics returns the topics on which the group has a committed offset, and those it
// could not be read on (so that their error is reported, not taken for "no commits"), sorted.
func committedTopics(c commits) []string {
	var topics []string
	for t, offs := range c.topics {
		for _, at := range offs {
			if at != NoOffset {
				topics = append(topics, t)
				break
			}
		}
	}
	for t := range c.errs {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	return topics
}

// askedGroups returns the groups an OffsetFetch request names: kgo sends one group per
// request in the fields of v0-v7 to brokers too old for more.
func askedGroups(req *kmsg.OffsetFetchRequest) []string {
	if len(req.Groups) == 0 {
		return []string{req.Group}
	}
	groups := make([]string, len(req.Groups))
	for i, g := range req.Groups {
		groups[i] = g.Group
	}
	return groups
}

// readOffsetFetch reads an OffsetFetch answer against its request: one entry per group asked
// for. A group answered twice or not at all is an error for that group; a group that was not
// asked for fails them all, because the answer cannot be matched to its request.
func readOffsetFetch(req *kmsg.OffsetFetchRequest, resp *kmsg.OffsetFetchResponse) map[string]commits {
	asked := askedGroups(req)
	out := make(map[string]commits, len(asked))
	fail := func(err error) map[string]commits {
		for _, g := range asked {
			out[g] = commits{err: err}
		}
		return out
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fail(err)
	}
	groups := resp.Groups
	if len(groups) == 0 && resp.Version < 8 && len(asked) == 1 {
		groups = []kmsg.OffsetFetchResponseGroup{oldStyleGroup(asked[0], resp)}
	}
	for _, g := range asked {
		out[g] = commits{err: errors.New("the broker's answer omits the group")}
	}
	seen := make(map[string]bool, len(asked))
	for i := range groups {
		g := &groups[i]
		if _, ok := out[g.Group]; !ok {
			return fail(fmt.Errorf("the broker answered group %q, which was not asked for", g.Group))
		}
		if seen[g.Group] {
			out[g.Group] = commits{err: errors.New("the broker answered the group twice")}
			continue
		}
		seen[g.Group] = true
		out[g.Group] = groupCommits(g)
	}
	return out
}

// oldStyleGroup is the answer of v0-v7, which carries one group in top-level fields, in the
// shape of v8+ (kgo makes the same conversion).
func oldStyleGroup(group string, resp *kmsg.OffsetFetchResponse) kmsg.OffsetFetchResponseGroup {
	g := kmsg.NewOffsetFetchResponseGroup()
	g.Group, g.ErrorCode = group, resp.ErrorCode
	g.Topics = make([]kmsg.OffsetFetchResponseGroupTopic, len(resp.Topics))
	for i, t := range resp.Topics {
		g.Topics[i].Topic = t.Topic
		g.Topics[i].Partitions = make([]kmsg.OffsetFetchResponseGroupTopicPartition, len(t.Partitions))
		for j, p := range t.Partitions {
			g.Topics[i].Partitions[j] = kmsg.OffsetFetchResponseGroupTopicPartition{
				Partition: p.Partition, Offset: p.Offset, ErrorCode: p.ErrorCode,
			}
		}
	}
	return g
}

func groupCommits(g *kmsg.OffsetFetchResponseGroup) commits {
	if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
		return commits{err: err}
	}
	c := commits{topics: make(map[string]map[int32]int64, len(g.Topics)), errs: map[string]error{}}
	for i := range g.Topics {
		t := &g.Topics[i]
		_, answered := c.topics[t.Topic]
		_, failed := c.errs[t.Topic]
		switch {
		case t.Topic == "":
			// kgo names the topics that v10+ answers by ID; one it could not name cannot be
			// matched to a trigger's topic, and skipping it could hide the only commits.
			return commits{err: errors.New("the broker answered a topic that has no name")}
		case answered || failed:
			delete(c.topics, t.Topic)
			c.errs[t.Topic] = errors.New("the broker answered the topic twice")
			continue
		}
		offs, err := topicCommits(t.Partitions)
		if err != nil {
			c.errs[t.Topic] = err
			continue
		}
		c.topics[t.Topic] = offs
	}
	return c
}

// topicCommits reads the committed offsets of one topic's partitions. Partition IDs must be
// those a topic can have, each answered once; a committed offset is ≥ 0, or -1 for none.
func topicCommits(parts []kmsg.OffsetFetchResponseGroupTopicPartition) (map[int32]int64, error) {
	offs := make(map[int32]int64, len(parts))
	for _, p := range parts {
		_, twice := offs[p.Partition]
		switch {
		case p.Partition < 0:
			return nil, fmt.Errorf("the broker answered partition %d", p.Partition)
		case p.Partition >= maxPartitions:
			return nil, fmt.Errorf("the broker answered partition %d, beyond the %d partitions qscale reads of a topic", p.Partition, maxPartitions)
		case twice:
			return nil, fmt.Errorf("the broker answered partition %d twice", p.Partition)
		}
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
			return nil, fmt.Errorf("partition %d: %w", p.Partition, err)
		}
		if p.Offset < NoOffset {
			return nil, fmt.Errorf("partition %d: the broker answered committed offset %d", p.Partition, p.Offset)
		}
		offs[p.Partition] = p.Offset
	}
	return offs, nil
}
