// Package kafka reads consumer-group lag with franz-go, with the semantics and parameter
// names of KEDA's Kafka scaler.
//
// Config holds a trigger's parameters and Compute is the pure lag math; Source is the I/O
// around it. One Source (one franz-go client) serves every trigger of a cluster and set of
// credentials: a poll fetches the committed offsets of all groups of interest together
// (OffsetFetch v8+ carries many groups per request) and lists the end offsets of all topics
// of interest together, however many triggers read them.
package kafka

import (
	"context"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/qscale/qscale/sources"
)

// Kind registers the kafka trigger type.
var Kind = sources.Kind{
	NewConfig: func() sources.Config { return &Config{} },
	Open: func(cfg sources.Config) (sources.Source, error) {
		c, ok := cfg.(*Config)
		if !ok {
			return nil, fmt.Errorf("kafka: cannot open a %T", cfg)
		}
		return Open(c)
	},
}

const connIdleTimeout = 5 * time.Minute

// Source polls the triggers of one Kafka cluster through one client.
type Source struct {
	cfg *Config // the connection settings; per-trigger settings come with each Poll
	cl  *kgo.Client
	adm *kadm.Client

	// Poll is never concurrent (sources.Source), so these need no lock.
	prev        map[groupPartition]int64 // committed offsets at the previous poll (excludePersistentLag)
	startTopics map[string]bool          // topics whose start offsets the previous poll needed

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

var _ sources.Source = (*Source)(nil)

// Open creates the client for the cluster and credentials of c. It does not dial: the first
// Poll does, so an unreachable cluster is reported as a poll error, not here.
func Open(c *Config) (*Source, error) {
	s := &Source{cfg: c, prev: map[groupPartition]int64{}, startTopics: map[string]bool{}}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.BootstrapServers...),
		kgo.ClientID("qscale"),
		kgo.WithHooks(&s.dials),
		// Polls are seconds apart; the default 20s idle timeout would make every poll of a
		// slowly polled target dial again.
		kgo.ConnIdleTimeout(connIdleTimeout),
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
	s.cl, s.adm = cl, kadm.NewClient(cl)
	return s, nil
}

// Close implements sources.Source.
func (s *Source) Close() error {
	s.cl.Close()
	return nil
}

// Poll implements sources.Source: one batched read of the cluster serves every config.
func (s *Source) Poll(ctx context.Context, cfgs []sources.Config) []sources.Sample {
	out := make([]sources.Sample, len(cfgs))
	cs := make([]*Config, 0, len(cfgs))
	for i, cfg := range cfgs {
		c, ok := cfg.(*Config)
		if !ok {
			out[i].Err = fmt.Errorf("kafka: cannot poll a %T", cfg)
			continue
		}
		cs = append(cs, c)
	}
	snap := s.read(ctx, cs)
	j := 0
	for i := range out {
		if out[i].Err != nil {
			continue
		}
		out[i] = s.sample(cs[j], snap)
		j++
	}
	s.remember(cs, snap)
	return out
}

func (s *Source) sample(c *Config, snap *snapshot) sources.Sample {
	sc := s.scope(c, snap)
	if sc.err != nil {
		return sources.Sample{Err: s.explain(sc.err), Warnings: sc.warnings}
	}
	l := c.Compute(sc.parts)
	return sources.Sample{
		Value:    l.Value,
		Active:   float64(l.Backlog) > c.ActivationLagThreshold,
		Warnings: sc.warnings,
	}
}

// snapshot is what one poll read from the cluster.
type snapshot struct {
	commits kadm.FetchOffsetsResponses
	ends    listing
	starts  listing
}

// listing is the outcome of listing offsets of some topics; err covers topics that failed as
// a whole (per-partition errors stay inside offsets).
type listing struct {
	offsets kadm.ListedOffsets
	errs    map[string]error
}

func (l *listing) add(topics []string, offs kadm.ListedOffsets, err error) {
	if l.offsets == nil {
		l.offsets, l.errs = kadm.ListedOffsets{}, map[string]error{}
	}
	for t, ps := range offs {
		l.offsets[t] = ps
	}
	if err == nil {
		return
	}
	for _, t := range topics {
		if _, ok := offs[t]; !ok {
			l.errs[t] = err
		}
	}
}

func (l *listing) has(topic string) bool {
	_, ok := l.offsets[topic]
	_, failed := l.errs[topic]
	return ok || failed
}

// read fetches everything the configs need in as few rounds as possible: committed offsets
// and end offsets of named topics together (with start offsets where the previous poll
// needed them); then end offsets of topics known only from commits; then any start offsets
// still missing.
func (s *Source) read(ctx context.Context, cs []*Config) *snapshot {
	snap := &snapshot{}
	var groups, named []string
	seenGroup, seenTopic := map[string]bool{}, map[string]bool{}
	for _, c := range cs {
		if !seenGroup[c.ConsumerGroup] {
			seenGroup[c.ConsumerGroup] = true
			groups = append(groups, c.ConsumerGroup)
		}
		for _, t := range c.Topics {
			if !seenTopic[t] {
				seenTopic[t] = true
				named = append(named, t)
			}
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { snap.commits = s.adm.FetchManyOffsets(ctx, groups...) })
	s.listOffsets(ctx, &wg, snap, named)
	wg.Wait()

	var extra []string
	for _, c := range cs {
		if len(c.Topics) > 0 {
			continue
		}
		for _, t := range committedTopics(snap.commits[c.ConsumerGroup]) {
			if !seenTopic[t] {
				seenTopic[t] = true
				extra = append(extra, t)
			}
		}
	}
	s.listOffsets(ctx, &wg, snap, extra)
	wg.Wait()

	needed := map[string]bool{}
	for _, c := range cs {
		for _, t := range s.scope(c, snap).needStart {
			needed[t] = true
		}
	}
	var missing []string
	for t := range needed {
		if !snap.starts.has(t) {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		offs, err := s.adm.ListStartOffsets(ctx, missing...)
		snap.starts.add(missing, offs, err)
	}
	s.startTopics = needed
	return snap
}

// listOffsets starts listing the end offsets of topics, and their start offsets when the
// previous poll needed them.
func (s *Source) listOffsets(ctx context.Context, wg *sync.WaitGroup, snap *snapshot, topics []string) {
	if len(topics) == 0 {
		return // kadm lists every topic of the cluster when given none
	}
	var predicted []string
	for _, t := range topics {
		if s.startTopics[t] {
			predicted = append(predicted, t)
		}
	}
	var mu sync.Mutex
	wg.Go(func() {
		offs, err := s.adm.ListEndOffsets(ctx, topics...)
		mu.Lock()
		defer mu.Unlock()
		snap.ends.add(topics, offs, err)
	})
	if len(predicted) > 0 {
		wg.Go(func() {
			offs, err := s.adm.ListStartOffsets(ctx, predicted...)
			mu.Lock()
			defer mu.Unlock()
			snap.starts.add(predicted, offs, err)
		})
	}
}

// committedTopics returns the topics on which the group has a committed offset, sorted.
func committedTopics(r kadm.FetchOffsetsResponse) []string {
	var topics []string
	for t, ps := range r.Fetched {
		for _, o := range ps {
			if o.Err == nil && o.At >= 0 {
				topics = append(topics, t)
				break
			}
		}
	}
	sort.Strings(topics)
	return topics
}

// remember keeps the committed offsets that excludePersistentLag compares with next poll.
// A group whose fetch failed keeps what was known of it.
func (s *Source) remember(cs []*Config, snap *snapshot) {
	next := map[groupPartition]int64{}
	failed := map[string]bool{}
	for _, c := range cs {
		if !c.ExcludePersistentLag {
			continue
		}
		r, ok := snap.commits[c.ConsumerGroup]
		if !ok || r.Err != nil {
			failed[c.ConsumerGroup] = true
			continue
		}
		for t, ps := range r.Fetched {
			for p, o := range ps {
				if o.Err == nil && o.At >= 0 {
					next[groupPartition{c.ConsumerGroup, t, p}] = o.At
				}
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
