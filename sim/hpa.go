package sim

import (
	"math"
	"time"
)

// PolicyType is the unit of an HPA scaling policy's value.
type PolicyType string

// The HPA's policy types.
const (
	Pods    PolicyType = "Pods"
	Percent PolicyType = "Percent"
)

// ScalingPolicy limits how much the HPA may change replicas within Period.
type ScalingPolicy struct {
	Type   PolicyType
	Value  int32
	Period time.Duration
}

// Rules are the HPA's rules for one direction, as in autoscaling/v2 HPAScalingRules.
type Rules struct {
	StabilizationWindow time.Duration
	// SelectPolicy is Max, Min or Disabled; Max by default.
	SelectPolicy string
	Policies     []ScalingPolicy
	// Tolerance is the share by which the usage ratio may differ from 1 without a change.
	Tolerance float64
}

// Behavior is the HPA's behavior, as in autoscaling/v2 HorizontalPodAutoscalerBehavior.
type Behavior struct{ Up, Down Rules }

// DefaultBehavior is the HPA's behavior when none is set: up by 4 pods or 100 % per 15 s
// at once, down by up to 100 % per 15 s after a 300 s window, 10 % tolerance.
func DefaultBehavior() Behavior {
	return Behavior{
		Up: Rules{SelectPolicy: "Max", Tolerance: 0.1, Policies: []ScalingPolicy{
			{Type: Pods, Value: 4, Period: 15 * time.Second}, {Type: Percent, Value: 100, Period: 15 * time.Second}}},
		Down: Rules{StabilizationWindow: 300 * time.Second, SelectPolicy: "Max", Tolerance: 0.1, Policies: []ScalingPolicy{
			{Type: Percent, Value: 100, Period: 15 * time.Second}}},
	}
}

// hpa models the HPA controller acting on one External metric with an AverageValue target,
// as Kubernetes computes it: the usage ratio against the tolerance band, the stabilization
// windows, and the scaling policies' rate limits.
type hpa struct {
	behavior Behavior
	min, max int32

	recs   []recommendation // within the longest stabilization window
	events []scaleEvent     // within the longest policy period
}

type recommendation struct {
	at       time.Duration
	replicas int32
}

type scaleEvent struct {
	at     time.Duration
	change int32 // + up, - down
}

// sync returns the replicas the HPA sets at time now, with current replicas, for a metric
// served as value with AverageValue target; ok false means the metric could not be read.
func (h *hpa) sync(now time.Duration, current int32, value, target float64, ok bool) int32 {
	if current == 0 { // the HPA does not act on a workload scaled to zero
		return 0
	}
	desired := current
	if ok {
		desired = h.propose(current, value, target)
	}
	desired = h.stabilize(now, current, desired)
	desired = h.limit(now, current, desired)
	desired = min(max(desired, h.min), h.max)
	if desired != current {
		h.events = append(h.events, scaleEvent{at: now, change: desired - current})
	}
	return desired
}

func (h *hpa) propose(current int32, value, target float64) int32 {
	ratio := value / (target * float64(current))
	if (ratio >= 1 && ratio-1 <= h.behavior.Up.Tolerance) || (ratio < 1 && 1-ratio <= h.behavior.Down.Tolerance) {
		return current
	}
	n := math.Ceil(value / target)
	if n >= math.MaxInt32 {
		return math.MaxInt32
	}
	return int32(n)
}

func (h *hpa) stabilize(now time.Duration, current, desired int32) int32 {
	h.recs = append(h.recs, recommendation{at: now, replicas: desired})
	up, down := desired, desired
	keep := h.recs[:0]
	longest := max(h.behavior.Up.StabilizationWindow, h.behavior.Down.StabilizationWindow)
	for _, r := range h.recs {
		if now-r.at > longest {
			continue
		}
		keep = append(keep, r)
		if now-r.at < h.behavior.Up.StabilizationWindow {
			up = min(up, r.replicas)
		}
		if now-r.at < h.behavior.Down.StabilizationWindow {
			down = max(down, r.replicas)
		}
	}
	h.recs = keep
	rec := max(current, up)
	return min(rec, down)
}

func (h *hpa) limit(now time.Duration, current, desired int32) int32 {
	switch {
	case desired > current:
		return min(desired, max(current, h.upLimit(now, current)))
	case desired < current:
		return max(desired, min(current, h.downLimit(now, current)))
	}
	return desired
}

// changed returns the replicas added (up) or removed (down) within period before now.
func (h *hpa) changed(now, period time.Duration, up bool) int32 {
	var n int32
	for _, e := range h.events {
		if now-e.at < period && (e.change > 0) == up {
			n += e.change
		}
	}
	if !up {
		n = -n
	}
	return n
}

func (h *hpa) upLimit(now time.Duration, current int32) int32 {
	r := h.behavior.Up
	if r.SelectPolicy == "Disabled" {
		return current
	}
	limit := int32(-1)
	for _, p := range r.Policies {
		start := current - h.changed(now, p.Period, true)
		var l int32
		if p.Type == Pods {
			l = start + p.Value
		} else {
			l = int32(math.Ceil(float64(start) * (1 + float64(p.Value)/100)))
		}
		limit = pick(r.SelectPolicy, limit, l, true)
	}
	if limit < 0 {
		return math.MaxInt32
	}
	return limit
}

func (h *hpa) downLimit(now time.Duration, current int32) int32 {
	r := h.behavior.Down
	if r.SelectPolicy == "Disabled" {
		return current
	}
	limit := int32(-1)
	for _, p := range r.Policies {
		start := current + h.changed(now, p.Period, false)
		var l int32
		if p.Type == Pods {
			l = start - p.Value
		} else {
			l = int32(float64(start) * (1 - float64(p.Value)/100))
		}
		limit = pick(r.SelectPolicy, limit, l, false)
	}
	if limit < 0 {
		return 0
	}
	return limit
}

// pick combines the limits of a direction's policies: Max lets the largest change through
// (the highest limit up, the lowest down), Min the smallest.
func pick(selectPolicy string, have, l int32, up bool) int32 {
	if have < 0 {
		return l
	}
	largest := selectPolicy != "Min"
	if up == largest {
		return max(have, l)
	}
	return min(have, l)
}

// prune drops scale events older than every policy period.
func (h *hpa) prune(now time.Duration) {
	var longest time.Duration
	for _, r := range []Rules{h.behavior.Up, h.behavior.Down} {
		for _, p := range r.Policies {
			longest = max(longest, p.Period)
		}
	}
	keep := h.events[:0]
	for _, e := range h.events {
		if now-e.at <= longest {
			keep = append(keep, e)
		}
	}
	h.events = keep
}
