package kafka

import (
	"fmt"
	"math"

	"github.com/qscale/qscale/sources"
)

// NoOffset marks an offset that is not known: a partition without a committed offset, or a
// start offset that was not listed because it could not change the result.
const NoOffset = -1

// Partition holds the offsets that one partition's lag is computed from.
type Partition struct {
	Topic     string
	ID        int32
	Start     int64 // log start offset, or NoOffset when not listed
	End       int64 // high watermark: the offset the next record will get
	Committed int64 // the group's committed offset, or NoOffset
	Previous  int64 // the committed offset at the previous poll, or NoOffset
}

// Lag is a trigger's lag over the partitions in its scope.
type Lag struct {
	// Value is the scaling metric: the backlog without persistent lag, after the partition cap.
	Value float64
	// Backlog is the total backlog including persistent lag; activation compares it.
	Backlog int64
	// Partitions is the number of partitions in scope; WithLag those with backlog to scale on.
	Partitions, WithLag int
}

// Compute applies the trigger's semantics to the offsets of the partitions in its scope.
//
// It refuses offsets that no broker can hold (an end or start offset below 0, a start above
// the end, a committed offset below NoOffset) and a backlog that overflows int64: each is an
// error naming the partition, never a value, because a wrong 0 would scale a busy workload to
// zero.
//
// kadm's CalculateGroupLag does not fit here: it counts messages already removed by retention
// as backlog of a committed partition, covers only partitions that are assigned or committed,
// and knows nothing of offsetResetPolicy, so the per-partition rule lives in backlog.
func (c *Config) Compute(parts []Partition) (Lag, error) {
	var l Lag
	var scaling int64
	for _, p := range parts {
		if err := p.check(); err != nil {
			return Lag{}, err
		}
		s, total := c.backlog(p)
		nextScaling, ok1 := addBacklog(scaling, s)
		nextBacklog, ok2 := addBacklog(l.Backlog, total)
		if !ok1 || !ok2 {
			return Lag{}, fmt.Errorf("topic %q partition %d: the backlog overflows int64 (end offset %d)", p.Topic, p.ID, p.End)
		}
		scaling, l.Backlog = nextScaling, nextBacklog
		if s > 0 {
			l.WithLag++
		}
	}
	l.Partitions = len(parts)
	l.Value = float64(scaling)
	if c.AllowIdleConsumers {
		return l, nil
	}
	limit := l.Partitions
	if c.EnsureEvenDistributionOfPartitions {
		l.Value = float64(evenReplicas(l.Value, l.Partitions, c.LagThreshold)) * c.LagThreshold
	}
	if c.LimitToPartitionsWithLag {
		limit = l.WithLag
	}
	// The cap is exact: ceil(Value/LagThreshold) never exceeds limit.
	l.Value = min(l.Value, float64(limit)*c.LagThreshold)
	return l, nil
}

// Count returns the message counts of the partitions in scope, for backlog-age scaling:
//
//   - Produced is the sum of their end offsets: every message ever written to them;
//   - Consumed is, per partition, its end offset less its backlog as Compute counts it (the
//     total, persistent lag included), summed. For a committed partition that is the
//     committed offset clamped to the start and end offsets: messages removed by retention
//     count as consumed, which they are as far as any consumer can tell. A partition without
//     a commit counts as a consumer that offsetResetPolicy would start reads it: consumed up
//     to its start offset under earliest, up to one message below its end under latest (the
//     one message Compute counts so that a new group activates), up to its end with
//     scaleToZeroOnInvalidOffset;
//   - Backlog is the total backlog, so Produced − Consumed = Backlog.
//
// Both counters go down only when a topic is deleted and created again. It refuses the
// offsets Compute refuses, and sums that overflow int64.
func (c *Config) Count(parts []Partition) (sources.Counters, error) {
	var produced, consumed, backlog int64
	for _, p := range parts {
		if err := p.check(); err != nil {
			return sources.Counters{}, err
		}
		_, total := c.backlog(p)
		var ok1, ok2, ok3 bool
		produced, ok1 = addBacklog(produced, p.End)
		consumed, ok2 = addBacklog(consumed, max(0, p.End-total))
		backlog, ok3 = addBacklog(backlog, total)
		if !ok1 || !ok2 || !ok3 {
			return sources.Counters{}, fmt.Errorf("topic %q partition %d: the message count overflows int64 (end offset %d)", p.Topic, p.ID, p.End)
		}
	}
	return sources.Counters{Backlog: float64(backlog), Produced: float64(produced), Consumed: float64(consumed)}, nil
}

// check reports offsets that no broker can hold.
func (p Partition) check() error {
	var problem string
	switch {
	case p.End < 0:
		problem = fmt.Sprintf("end offset %d", p.End)
	case p.Start < NoOffset:
		problem = fmt.Sprintf("start offset %d", p.Start)
	case p.Start > p.End:
		problem = fmt.Sprintf("start offset %d above end offset %d", p.Start, p.End)
	case p.Committed < NoOffset:
		problem = fmt.Sprintf("committed offset %d", p.Committed)
	case p.Previous < NoOffset:
		problem = fmt.Sprintf("previous committed offset %d", p.Previous)
	default:
		return nil
	}
	return fmt.Errorf("topic %q partition %d: the broker answered %s", p.Topic, p.ID, problem)
}

// addBacklog adds two backlogs, both ≥ 0, and reports whether the sum fits in an int64.
func addBacklog(a, b int64) (int64, bool) {
	if a > math.MaxInt64-b {
		return 0, false
	}
	return a + b, true
}

// backlog returns one partition's backlog to scale on, and its total including persistent lag.
// Messages that retention removed (below Start) are never backlog, and an empty partition has
// none whether or not the group committed to it. Total is never above End.
func (c *Config) backlog(p Partition) (scaling, total int64) {
	if p.End == 0 || (p.Start != NoOffset && p.End <= p.Start) {
		return 0, 0
	}
	if p.Committed == NoOffset {
		switch {
		case c.ScaleToZeroOnInvalidOffset:
			return 0, 0
		case c.OffsetResetPolicy == "latest":
			// A consumer starting now would read nothing old, but a new group must be able to
			// activate its target: one message's worth, as KEDA does.
			return 1, 1
		}
		b := max(0, p.End-max(p.Start, 0))
		return b, b
	}
	b := max(0, p.End-max(p.Committed, p.Start))
	if c.ExcludePersistentLag && p.Previous == p.Committed {
		return 0, b
	}
	return b, b
}

// needsStart reports whether p's start offset can change its backlog.
func (c *Config) needsStart(p Partition) bool {
	if p.Committed == NoOffset {
		return !c.ScaleToZeroOnInvalidOffset
	}
	return p.Committed < p.End
}

// evenReplicas returns the smallest divisor of partitions whose replicas can take lag at
// threshold each, so that every consumer gets the same number of partitions.
func evenReplicas(lag float64, partitions int, threshold float64) int {
	for f := 1; f <= partitions; f++ {
		if partitions%f == 0 && float64(f)*threshold >= lag {
			return f
		}
	}
	return partitions
}
