// Package kafkasim plays a queue workload on a Kafka-protocol broker: a Simulator is the only
// producer to a topic, at a rate its caller sets, and the only member of a consumer group,
// whose capacity is a fixed number of messages per second for each ready replica of the
// workload it stands for. Its consumers run no code: they commit offsets as real consumers
// would, so the lag, the counters and the consumption rate a poller reads are those of a
// real workload. It keeps when each waiting message was produced, so it knows the age of the
// oldest one: what a targetBacklogAge trigger promises to bound.
package kafkasim

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Tick is the simulator's step: each tick the producer writes rate × Tick messages and the
// consumers commit ready replicas × PerReplica × Tick of the backlog.
const Tick = 100 * time.Millisecond

// Config describes the topic and the workload.
type Config struct {
	Brokers []string
	// Topic has Partitions partitions, written round-robin; Group is the consumer group.
	Topic      string
	Partitions int32
	Group      string
	// PerReplica is the messages per second one ready replica consumes.
	PerReplica float64
}

// Simulator produces to the topic and plays the consumer group. It is the only producer and
// the only committer, so it keeps every partition's end and committed offsets itself.
type Simulator struct {
	cfg Config
	cl  *kgo.Client
	adm *kadm.Client

	mu        sync.Mutex
	ends      []int64
	committed []int64
	born      [][]time.Time // per partition, when each message from committed on was produced
	ready     int32         // ready replicas: a pod still starting consumes nothing
	produced  int64
	consumed  int64
	rate      float64 // messages per second
}

// Snapshot is the workload's state at one moment.
type Snapshot struct {
	Rate               float64 // the producer's messages per second
	Lag                int64   // messages produced and not yet committed
	Ready              int32
	Produced, Consumed int64
	// OldestAge is how long the oldest waiting message has waited; 0 when none waits.
	OldestAge time.Duration
}

// New connects to the brokers; Start begins the simulation.
func New(cfg Config) (*Simulator, error) {
	if cfg.Partitions <= 0 || cfg.PerReplica <= 0 || cfg.Topic == "" || cfg.Group == "" {
		return nil, errors.New("kafkasim: Topic, Group, Partitions and PerReplica are required")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0))
	if err != nil {
		return nil, err
	}
	return &Simulator{cfg: cfg, cl: cl, adm: kadm.NewClient(cl), ends: make([]int64, cfg.Partitions),
		committed: make([]int64, cfg.Partitions), born: make([][]time.Time, cfg.Partitions)}, nil
}

// Close disconnects from the brokers.
func (s *Simulator) Close() { s.cl.Close() }

// Start commits the group at the start of every partition and runs the producer and the
// consumers until ctx ends.
func (s *Simulator) Start(ctx context.Context) error {
	os := kadm.Offsets{}
	for p := range s.cfg.Partitions {
		os.AddOffset(s.cfg.Topic, p, 0, -1)
	}
	if err := s.adm.CommitAllOffsets(ctx, s.cfg.Group, os); err != nil {
		return err
	}
	go s.loop(ctx)
	return nil
}

// SetReady sets the replicas that consume.
func (s *Simulator) SetReady(n int32) {
	s.mu.Lock()
	s.ready = n
	s.mu.Unlock()
}

// SetRate sets the producer's messages per second.
func (s *Simulator) SetRate(r float64) {
	s.mu.Lock()
	s.rate = r
	s.mu.Unlock()
}

// Snapshot returns the state now.
func (s *Simulator) Snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := Snapshot{Rate: s.rate, Ready: s.ready, Produced: s.produced, Consumed: s.consumed}
	var oldest time.Time
	for p := range s.ends {
		snap.Lag += s.ends[p] - s.committed[p]
		if b := s.born[p]; len(b) > 0 && (oldest.IsZero() || b[0].Before(oldest)) {
			oldest = b[0]
		}
	}
	if !oldest.IsZero() {
		snap.OldestAge = time.Since(oldest)
	}
	return snap
}

func (s *Simulator) loop(ctx context.Context) {
	t := time.NewTicker(Tick)
	defer t.Stop()
	var owedProduce, owedConsume float64
	next := int32(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		owedProduce += s.rate * Tick.Seconds()
		owedConsume += float64(s.ready) * s.cfg.PerReplica * Tick.Seconds()
		s.mu.Unlock()
		var recs []*kgo.Record
		for ; owedProduce >= 1; owedProduce-- {
			recs = append(recs, &kgo.Record{Topic: s.cfg.Topic, Partition: next, Value: []byte("order")})
			next = (next + 1) % s.cfg.Partitions
		}
		if len(recs) > 0 && s.cl.ProduceSync(ctx, recs...).FirstErr() == nil {
			now := time.Now()
			s.mu.Lock()
			for _, r := range recs {
				s.ends[r.Partition]++
				s.born[r.Partition] = append(s.born[r.Partition], now)
			}
			s.produced += int64(len(recs))
			s.mu.Unlock()
		}
		owedConsume = s.consume(ctx, owedConsume)
	}
}

// consume commits up to budget messages of backlog, oldest first across the partitions, and
// returns the budget to carry into the next tick: only the fraction of a message, since
// capacity left once the backlog is gone is idle time, not something to save up.
func (s *Simulator) consume(ctx context.Context, budget float64) float64 {
	s.mu.Lock()
	next := append([]int64(nil), s.committed...)
	done := int64(0)
	for ; budget >= 1; budget-- {
		p := s.oldestPartition(next)
		if p < 0 {
			break
		}
		next[p]++
		done++
	}
	s.mu.Unlock()
	if done == 0 {
		return min(budget, 1)
	}
	os := kadm.Offsets{}
	for p := range s.cfg.Partitions {
		os.AddOffset(s.cfg.Topic, p, next[p], -1)
	}
	if err := s.adm.CommitAllOffsets(ctx, s.cfg.Group, os); err != nil {
		return min(budget+float64(done), 1)
	}
	s.mu.Lock()
	for p := range next {
		s.born[p] = s.born[p][next[p]-s.committed[p]:]
	}
	s.committed = next
	s.consumed += done
	s.mu.Unlock()
	return min(budget, 1)
}

// oldestPartition returns the partition whose next message after next was produced first,
// or -1 when none waits. The caller holds s.mu.
func (s *Simulator) oldestPartition(next []int64) int {
	best := -1
	var at time.Time
	for p := range next {
		i := next[p] - s.committed[p]
		if next[p] >= s.ends[p] || i >= int64(len(s.born[p])) {
			continue
		}
		if t := s.born[p][i]; best < 0 || t.Before(at) {
			best, at = p, t
		}
	}
	return best
}
