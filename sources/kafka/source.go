// Package kafka reads consumer-group lag with franz-go, with the semantics and parameter
// names of KEDA's Kafka scaler.
//
// Config holds a trigger's parameters, Compute is the pure lag math and Count the message
// counts a backlog-age trigger reports (from the same offsets: no request of their own);
// Source is the I/O around them. One Source (one franz-go client) serves every trigger of a cluster and set of
// credentials: a poll fetches the committed offsets of all groups of interest together
// (OffsetFetch v8+ carries many groups per request) and lists the end offsets of all topics
// of interest together, however many triggers read them.
//
// Every broker answer is untrusted input: readMetadata, readListOffsets and readOffsetFetch
// read each one against the request it answers, and Compute refuses offsets that no broker can
// hold, so that a broken or hostile broker yields an error naming what was wrong, never a
// panic, an allocation sized by a number it chose, or a 0.
package kafka

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/qscale/qscale/sources"
)

// Kind registers the kafka trigger type; targetBacklogAge replaces lagThreshold.
var Kind = sources.NewKind(Open, "lagThreshold")

const connIdleTimeout = 5 * time.Minute

// maxResponseBytes bounds one broker response (kgo's default is 100 MiB). kgo allocates the
// buffer for a response as soon as the broker announces its size, so any broker a tenant names
// could otherwise make qscale allocate 100 MiB per connection by sending four bytes. qscale
// reads only Metadata, ListOffsets and OffsetFetch answers, of about 50, 27 and 20 bytes per
// partition (Metadata at replication factor 3): a topic of maxPartitions partitions answers
// in at most 10 MB, and one coordinator can answer 1.6 million committed offsets.
const maxResponseBytes = 32 << 20

// Source polls the triggers of one Kafka cluster through one client.
type Source struct {
	cfg *Config // the connection settings; per-trigger settings come with each Poll
	cl  *kgo.Client

	// Poll is never concurrent (sources.Source), so these need no lock.
	prev     map[groupPartition]int64 // committed offsets at the previous poll (excludePersistentLag)
	meta     map[string]topicMeta     // partitions of topics, from metadata read at metaAt
	metaAt   time.Time
	starts   listing // start offsets listed since startsAt
	startsAt time.Time

	dials dialErrors
}

// dialErrors keeps the latest failure to connect to a broker. A poll against an unreachable
// or misconfigured cluster ends in a deadline, because the client retries; the dial error is
// what tells the user why.
type dialErrors struct {
	mu   sync.Mutex
	last error
}

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (d *dialErrors) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.last = fmt.Errorf("connecting to broker %s:%d: %w", meta.Host, meta.Port, err)
	} else {
		d.last = nil
	}
}

func (d *dialErrors) get() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}

type groupPartition struct {
	group, topic string
	partition    int32
}

var _ sources.TypedSource[*Config] = (*Source)(nil)

// Open creates the client for the cluster and credentials of c. It does not dial: the first
// Poll does, so an unreachable cluster is reported as a poll error, not here.
func Open(c *Config) (*Source, error) {
	s := &Source{cfg: c, prev: map[groupPartition]int64{}}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.BootstrapServers...),
		kgo.ClientID("qscale"),
		kgo.WithHooks(&s.dials),
		// Polls are seconds apart; the default 20s idle timeout would make every poll of a
		// slowly polled target dial again.
		kgo.ConnIdleTimeout(connIdleTimeout),
		kgo.BrokerMaxReadBytes(maxResponseBytes),
		// kgo requires a fetch to fit in a response; qscale never fetches records.
		kgo.FetchMaxBytes(maxResponseBytes),
	}
	switch c.mechanism() {
	case "plain":
		opts = append(opts, kgo.SASL(plain.Auth{User: c.Username, Pass: c.Password}.AsMechanism()))
	case "scram_sha256":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.Username, Pass: c.Password}.AsSha256Mechanism()))
	case "scram_sha512":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.Username, Pass: c.Password}.AsSha512Mechanism()))
	}
	if c.tlsEnabled() {
		tc, err := c.tlsConfig()
		if err != nil {
			return nil, fmt.Errorf("kafka cluster %s: %w", c.cluster(), err)
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka cluster %s: %w", c.cluster(), err)
	}
	s.cl = cl
	return s, nil
}

// Close implements sources.TypedSource.
func (s *Source) Close() error {
	s.cl.Close()
	return nil
}

// Poll implements sources.TypedSource: one batched read of the cluster serves every config.
func (s *Source) Poll(ctx context.Context, cs []*Config) []sources.Sample {
	scopes := s.read(ctx, cs)
	out := make([]sources.Sample, len(cs))
	for i, c := range cs {
		out[i] = s.sample(c, scopes[i])
	}
	s.remember(cs, scopes)
	return out
}

func (s *Source) sample(c *Config, sc *scoped) sources.Sample {
	if sc.err != nil {
		return sources.Sample{Err: s.explain(sc.err), Warnings: sc.warnings}
	}
	l, err := c.Compute(sc.parts)
	if err != nil {
		return sources.Sample{Err: s.explain(err), Warnings: sc.warnings}
	}
	out := sources.Sample{
		Value:    l.Value,
		Active:   float64(l.Backlog) > c.ActivationLagThreshold,
		Warnings: sc.warnings,
	}
	if c.ScalesOnBacklogAge() {
		counts, err := c.Count(sc.parts)
		if err != nil {
			return sources.Sample{Err: s.explain(err), Warnings: sc.warnings}
		}
		if !c.AllowIdleConsumers {
			counts.Consumers = l.Partitions
		}
		out.Counters = &counts
	}
	return out
}

// snapshot is what one poll read from the cluster.
type snapshot struct {
	commits map[string]commits
	ends    listing
	starts  listing
}

// read fetches everything the configs need in as few rounds as possible and returns each
// config's scope: committed offsets and end offsets of named topics together; then end
// offsets of topics known only from commits; then start offsets, where they can change a
// result and were not listed in the last metadataMaxAge. Start offsets move only when
// retention deletes a segment (checked every 5 minutes by default in Kafka), so reusing them
// briefly can overstate a backlog for seconds, never understate it.
func (s *Source) read(ctx context.Context, cs []*Config) []*scoped {
	if time.Since(s.startsAt) > metadataMaxAge {
		s.starts, s.startsAt = newListing(), time.Now()
	}
	snap := &snapshot{ends: newListing(), starts: s.starts}
	groups, named := groupsAndTopics(cs)
	var wg sync.WaitGroup
	wg.Go(func() { snap.commits = s.fetchCommits(ctx, groups) })
	s.listOffsets(ctx, &wg, snap, named)
	wg.Wait()
	s.listOffsets(ctx, &wg, snap, topicsFromCommits(cs, snap, named))
	wg.Wait()

	scopes := make([]*scoped, len(cs))
	var missing []string
	for i, c := range cs {
		scopes[i] = s.scope(c, snap)
		for _, t := range scopes[i].needStart {
			if !snap.starts.has(t) && !slices.Contains(missing, t) {
				missing = append(missing, t)
			}
		}
	}
	if len(missing) > 0 {
		more := s.list(ctx, s.topicPartitions(ctx, missing), missing, startOffsets)
		for _, sc := range scopes {
			sc.fillStarts(&more)
		}
		for t, offs := range more.byTopic { // failures are not kept: the next poll retries them
			s.starts.byTopic[t] = offs
		}
	}
	return scopes
}

// groupsAndTopics returns the distinct groups and named topics of cs, in first-seen order.
func groupsAndTopics(cs []*Config) (groups, topics []string) {
	seenGroup, seenTopic := map[string]bool{}, map[string]bool{}
	for _, c := range cs {
		if !seenGroup[c.ConsumerGroup] {
			seenGroup[c.ConsumerGroup] = true
			groups = append(groups, c.ConsumerGroup)
		}
		for _, t := range c.Topics {
			if !seenTopic[t] {
				seenTopic[t] = true
				topics = append(topics, t)
			}
		}
	}
	return groups, topics
}

// topicsFromCommits returns the topics that configs without named topics read, because
// their group committed on them, and that are not already in listed.
func topicsFromCommits(cs []*Config, snap *snapshot, listed []string) []string {
	var extra []string
	for _, c := range cs {
		if len(c.Topics) > 0 {
			continue
		}
		for _, t := range committedTopics(snap.commits[c.ConsumerGroup]) {
			if !slices.Contains(listed, t) && !slices.Contains(extra, t) {
				extra = append(extra, t)
			}
		}
	}
	return extra
}

// listOffsets starts listing the end offsets of topics.
func (s *Source) listOffsets(ctx context.Context, wg *sync.WaitGroup, snap *snapshot, topics []string) {
	if len(topics) == 0 {
		return
	}
	meta := s.topicPartitions(ctx, topics)
	wg.Go(func() {
		l := s.list(ctx, meta, topics, endOffsets)
		for t, offs := range l.byTopic {
			snap.ends.byTopic[t] = offs
		}
		for t, err := range l.errs {
			snap.ends.errs[t] = err
		}
	})
}

// remember keeps the committed offsets that excludePersistentLag compares with next poll.
// A group whose fetch failed keeps what was known of it.
func (s *Source) remember(cs []*Config, scopes []*scoped) {
	next := map[groupPartition]int64{}
	failed := map[string]bool{}
	for i, c := range cs {
		if !c.ExcludePersistentLag {
			continue
		}
		if scopes[i].err != nil {
			failed[c.ConsumerGroup] = true
			continue
		}
		for _, p := range scopes[i].parts {
			if p.Committed != NoOffset {
				next[groupPartition{c.ConsumerGroup, p.Topic, p.ID}] = p.Committed
			}
		}
	}
	for k, v := range s.prev {
		if failed[k.group] {
			next[k] = v
		}
	}
	s.prev = next
}
