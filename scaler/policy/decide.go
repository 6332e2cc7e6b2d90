package policy

import (
	"math"
	"time"
)

// TriggerState is what the loop knows of one trigger when it decides.
type TriggerState struct {
	Target   float64 // value per replica the HPA aims at
	Value    float64 // the latest value read, when Err is nil
	Active   bool    // the latest value is above the activation threshold
	Err      error   // the latest poll failed
	Failures int32   // consecutive failed polls
	Polled   bool    // a poll has answered or failed since the trigger was configured
	// Pending: the poll answered, but the value cannot be computed yet (a backlog-age
	// trigger that knows no per-replica rate): like an unread trigger, it holds the size.
	Pending bool
	// Replicas: the value counts replicas (a backlog-age trigger, with Target AgeTarget);
	// on the way up, a value past the HPA's tolerance band is served even when it makes the
	// HPA land a little above the target, rather than not at all.
	Replicas bool
	// Age is the time since the latest poll: a Stale value is neither served nor trusted,
	// as if the source were failing.
	Age time.Duration
}

// Input is everything Decide looks at.
type Input struct {
	Spec     Spec
	Triggers []TriggerState
	// Replicas is the workload's spec.replicas; Observed is its status.replicas, the count the
	// HPA divides by.
	Replicas, Observed int32
	// LastActive is when a trigger was last active (or failing, or not yet read).
	LastActive time.Time
	Now        time.Time
}

// Decision is the loop's verdict for one workload.
type Decision struct {
	// Desired is the replica count the loop aims at.
	Desired int32
	// Active: some trigger is above its activation threshold.
	Active bool
	// Paused: the workload is paused; qscale keeps no HPA for it.
	Paused bool
	// Fallback: some trigger is served its fallback value.
	Fallback bool
	// ScaleTo, when set, is the replica count to write through the scale subresource:
	// 0 → 1 on activation, → 0 after the cooldown, and paused-replicas.
	ScaleTo *int32
	// LastActive is Input.LastActive, moved to now when a trigger is active, failing or unread.
	LastActive time.Time
	// Metrics holds what the metrics API serves for each trigger, in order.
	Metrics []Metric
}

// Metric is what the external metrics API serves for one trigger.
type Metric struct {
	// Milli is the value served to the HPA in thousandths, the unit of the HPA's own
	// arithmetic. It equals Raw except where the HPA's tolerance needs steering.
	Milli int64
	// Raw is the trigger's own value (its source's figure, or the fallback value).
	Raw float64
	// OK is false when there is no value to serve: the API answers an error and the HPA
	// keeps the workload's size.
	OK       bool
	Fallback bool
}

// Decide computes the replica target of one workload and the metric values that make the
// HPA reach it.
//
//   - Paused: paused-replicas N sets the workload to N; paused alone changes nothing.
//   - Each trigger asks for ceil(value/target) replicas; a trigger failing for
//     fallback-failures polls in a row asks for fallback-replicas, or for the replicas the
//     workload has if that is more: fallback never scales down.
//   - The target is the largest ask, clamped to [max(1, min-replicas), max-replicas].
//   - With min-replicas 0: a workload at 0 is activated (ScaleTo = max(1, min)) when a
//     trigger is active or in fallback; it is scaled to 0 once every trigger has been
//     inactive, and none failing, unread or stale, for the cooldown period, and only from
//     at most max(1, min) replicas, so the HPA's scale-down policy is never bypassed.
//   - Never down on an error: while a trigger is failing, unread or stale, the target is
//     at least the workload's replicas (within max-replicas), and that trigger's metric is
//     not served unless it is in fallback, which stops the HPA scaling down.
func Decide(in Input) Decision {
	s := &in.Spec
	d := Decision{LastActive: in.LastActive}
	if s.PausedReplicas != nil {
		d.Paused, d.Desired = true, *s.PausedReplicas
		if in.Replicas != d.Desired {
			d.ScaleTo = ptr(d.Desired)
		}
		return d
	}
	if s.Paused {
		d.Paused, d.Desired = true, in.Replicas
		return d
	}
	floor := max(1, s.MinReplicas)
	want, unsettled := d.readTriggers(s, in.Triggers, in.Replicas)
	if d.Active || unsettled {
		d.LastActive = in.Now
	}
	cooled := !d.Active && !unsettled && in.Now.Sub(d.LastActive) >= s.CooldownPeriod
	d.size(s, in.Replicas, want, cooled)
	if unsettled {
		d.Desired = max(d.Desired, min(in.Replicas, s.MaxReplicas))
	}

	current := in.Observed
	if d.ScaleTo != nil {
		current = *d.ScaleTo
	}
	if current > 0 {
		h := hpa{current: current, lo: floor, hi: s.MaxReplicas, up: s.ScaleUpTolerance, down: s.ScaleDownTolerance}
		h.steer(d.Metrics, targetsMilli(in.Triggers), overshoots(in.Triggers), clamp(d.Desired, floor, s.MaxReplicas))
	}
	return d
}

// size sets Desired and, for the moves to and from zero, ScaleTo.
func (d *Decision) size(s *Spec, replicas, want int32, cooled bool) {
	floor := max(1, s.MinReplicas)
	d.Desired = clamp(want, floor, s.MaxReplicas)
	if s.MinReplicas > 0 {
		return
	}
	switch {
	case replicas == 0 && !d.Active && !d.Fallback:
		d.Desired = 0
	case replicas == 0:
		d.ScaleTo = ptr(floor)
	case cooled:
		d.Desired = 0
		if replicas <= floor {
			d.ScaleTo = ptr(int32(0))
		}
	}
}

// readTriggers fills d.Metrics, d.Active and d.Fallback, and returns the largest replica
// count a trigger asks for and whether any trigger is failing, unread or stale.
func (d *Decision) readTriggers(s *Spec, triggers []TriggerState, replicas int32) (want int32, unsettled bool) {
	d.Metrics = make([]Metric, len(triggers))
	for i, t := range triggers {
		m := &d.Metrics[i]
		switch {
		case !t.Polled:
			unsettled = true
		case t.Pending && t.Err == nil:
			// The poll answered: whether the trigger is active is known, even though the
			// replicas it asks for are not, and activity is what wakes a workload at 0.
			unsettled = true
			d.Active = d.Active || t.Active
		case t.Err != nil:
			unsettled = true
			if s.FallbackReplicas > 0 && t.Failures >= s.FallbackFailures {
				ask := max(s.FallbackReplicas, min(replicas, s.MaxReplicas))
				d.Fallback = true
				m.Raw, m.OK, m.Fallback = float64(ask)*t.Target, true, true
				want = max(want, ask)
			}
		case Stale(t.Age, s.PollingInterval):
			unsettled = true
		default:
			m.Raw, m.OK = t.Value, true
			want = max(want, replicasFor(t.Value, t.Target))
			d.Active = d.Active || t.Active
		}
		m.Milli = Milli(m.Raw)
	}
	return want, unsettled
}

// overshoots says, for each trigger, whether its value may land the HPA above the target
// on the way up when no value lands it exactly.
func overshoots(ts []TriggerState) []bool {
	out := make([]bool, len(ts))
	for i, t := range ts {
		out[i] = t.Replicas
	}
	return out
}

func targetsMilli(ts []TriggerState) []int64 {
	out := make([]int64, len(ts))
	for i, t := range ts {
		out[i] = max(1, Milli(t.Target))
	}
	return out
}

// Milli converts a value to the thousandths the HPA computes with, the unit of the values
// served and of the HPA's AverageValue targets. A value too large for that unit is capped.
func Milli(v float64) int64 {
	if v >= math.MaxInt64/1000 {
		return math.MaxInt64 / 1000 * 1000
	}
	return int64(math.Round(v * 1000))
}

// replicasFor returns ceil(value/target), bounded to int32.
func replicasFor(value, target float64) int32 {
	n := math.Ceil(value / target)
	if n >= math.MaxInt32 {
		return math.MaxInt32
	}
	return int32(max(n, 0))
}

func clamp(n, lo, hi int32) int32 { return min(max(n, lo), hi) }

func ptr[T any](v T) *T { return &v }
