package main

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// tick is the simulator's step: each tick the producer writes rate × tick messages and the
// consumers commit ready replicas × perReplica × tick of the backlog.
const tick = 100 * time.Millisecond

// simulator produces to the topic and plays the consumer group. It is the only producer and
// the only committer, so it keeps every partition's end and committed offsets itself.
type simulator struct {
	cl         *kgo.Client
	adm        *kadm.Client
	perReplica int

	mu        sync.Mutex
	ends      [partitions]int64
	committed [partitions]int64
	ready     int32 // ready replicas: a pod still starting consumes nothing
	produced  int64
	consumed  int64
	rate      float64 // current producer rate, messages per second
	frac      float64 // fraction of the run elapsed
}

func newSimulator(brokers []string, perReplica int) (*simulator, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0))
	if err != nil {
		return nil, err
	}
	return &simulator{cl: cl, adm: kadm.NewClient(cl), perReplica: perReplica}, nil
}

func (s *simulator) close() { s.cl.Close() }

// start commits the group at the start of every partition and runs the producer and the
// consumers until ctx ends.
func (s *simulator) start(ctx context.Context) error {
	os := kadm.Offsets{}
	for p := range int32(partitions) {
		os.AddOffset(topic, p, 0, -1)
	}
	if err := s.adm.CommitAllOffsets(ctx, group, os); err != nil {
		return err
	}
	go s.loop(ctx)
	return nil
}

func (s *simulator) setReady(n int32) {
	s.mu.Lock()
	s.ready = n
	s.mu.Unlock()
}

func (s *simulator) setProgress(frac float64) {
	s.mu.Lock()
	s.frac, s.rate = frac, rate(frac)
	s.mu.Unlock()
}

// snapshot returns the current rate, total lag, ready replicas and totals.
func (s *simulator) snapshot() (rate float64, lag int64, ready int32, produced, consumed int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p := range partitions {
		lag += s.ends[p] - s.committed[p]
	}
	return s.rate, lag, s.ready, s.produced, s.consumed
}

func (s *simulator) loop(ctx context.Context) {
	t := time.NewTicker(tick)
	defer t.Stop()
	var owedProduce, owedConsume float64
	next := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		owedProduce += s.rate * tick.Seconds()
		owedConsume += float64(s.ready) * float64(s.perReplica) * tick.Seconds()
		s.mu.Unlock()
		var recs []*kgo.Record
		for ; owedProduce >= 1; owedProduce-- {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(next % partitions), Value: []byte("order")})
			next++
		}
		if len(recs) > 0 && s.cl.ProduceSync(ctx, recs...).FirstErr() == nil {
			s.mu.Lock()
			for _, r := range recs {
				s.ends[r.Partition]++
			}
			s.produced += int64(len(recs))
			s.mu.Unlock()
		}
		owedConsume = s.consume(ctx, owedConsume)
	}
}

// consume commits up to budget messages of backlog, spread over the partitions that have
// some, and returns the budget to carry into the next tick: only the fraction of a message,
// since capacity left once the backlog is gone is idle time, not something to save up.
func (s *simulator) consume(ctx context.Context, budget float64) float64 {
	s.mu.Lock()
	next := s.committed
	done := int64(0)
	for changed := true; changed && budget >= 1; {
		changed = false
		for p := range partitions {
			if budget >= 1 && next[p] < s.ends[p] {
				next[p]++
				budget--
				done++
				changed = true
			}
		}
	}
	s.mu.Unlock()
	if done == 0 {
		return min(budget, 1)
	}
	os := kadm.Offsets{}
	for p := range int32(partitions) {
		os.AddOffset(topic, p, next[p], -1)
	}
	if err := s.adm.CommitAllOffsets(ctx, group, os); err != nil {
		return min(budget+float64(done), 1)
	}
	s.mu.Lock()
	s.committed = next
	s.consumed += done
	s.mu.Unlock()
	return min(budget, 1)
}
