package policy

// hpa models how the HPA controller sizes a workload from External metrics with AverageValue
// targets, in its own milli-unit arithmetic: for each metric it keeps the current size while
// usage/(target × current) is within [1−down, 1+up], and otherwise proposes
// ceil(usage/target); it takes the largest proposal and clamps it to [lo, hi]. While a metric
// cannot be read it does not scale down.
//
// That tolerance band is what leaves KEDA users one replica short of a partition cap or of the
// maximum: at 63 replicas, a value worth 64 is inside the band and nothing happens. steer
// serves, where one exists, a value that makes the HPA land exactly on the loop's target.
type hpa struct {
	current, lo, hi int32
	up, down        float64
}

func (h hpa) propose(usage, target int64) int32 {
	ratio := float64(usage) / (float64(target) * float64(h.current))
	if ratio >= 1-h.down && ratio <= 1+h.up {
		return h.current
	}
	return ceilDiv(usage, target)
}

// outcome is the replica count the HPA would choose for these metric values.
func (h hpa) outcome(ms []Metric, targets []int64) int32 {
	best, read, unread := int32(0), false, false
	for i, m := range ms {
		if !m.OK {
			unread = true
			continue
		}
		read = true
		best = max(best, h.propose(m.Milli, targets[i]))
	}
	if !read || (unread && best < h.current) {
		return h.current
	}
	return clamp(best, h.lo, h.hi)
}

// steer adjusts the served values so that the HPA's outcome is goal, when some values can
// achieve it; otherwise it leaves them as they are.
func (h hpa) steer(ms []Metric, targets []int64, overshoot []bool, goal int32) {
	if h.outcome(ms, targets) == goal {
		return
	}
	k := highestAsk(ms, targets)
	if k < 0 {
		return
	}
	if u, ok := h.valueFor(goal, targets[k]); ok || (overshoot[k] && goal > h.current) {
		ms[k].Milli = u
	}
	if goal >= h.current {
		return
	}
	// Scaling down needs every metric to propose at most goal.
	for j, m := range ms {
		if j != k && m.OK && h.propose(m.Milli, targets[j]) > goal {
			if u, ok := h.valueFor(goal, targets[j]); ok {
				ms[j].Milli = u
			}
		}
	}
}

// highestAsk returns the index of the served metric that asks for the most replicas, -1 when
// none is served.
func highestAsk(ms []Metric, targets []int64) int {
	k := -1
	for i, m := range ms {
		if m.OK && (k < 0 || ceilDiv(m.Milli, targets[i]) > ceilDiv(ms[k].Milli, targets[k])) {
			k = i
		}
	}
	return k
}

// valueFor returns a usage for which the HPA, at the current size, proposes goal (after its
// clamp), moved as little as possible from the edge of the tolerance band.
func (h hpa) valueFor(goal int32, target int64) (int64, bool) {
	c := int64(h.current)
	switch {
	case goal > h.current:
		// The smallest usage above the band that proposes at least goal.
		u := max((int64(goal)-1)*target+1, int64((1+h.up)*float64(target*c))+1)
		for h.propose(u, target) == h.current { // float rounding at the band's edge
			u++
		}
		p := h.propose(u, target)
		return u, p == goal || (p > goal && goal == h.hi)
	case goal < h.current:
		// The largest usage below the band that proposes at most goal.
		u := min(int64(goal)*target, int64((1-h.down)*float64(target*c)))
		for u > 0 && h.propose(u, target) == h.current {
			u--
		}
		u = max(u, 0)
		p := h.propose(u, target)
		return u, p == goal || (p < goal && goal == h.lo)
	}
	return c * target, true
}

// ceilDiv is ceil(a/b) computed as the HPA controller computes it, in float64.
func ceilDiv(a, b int64) int32 { return replicasFor(float64(a), float64(b)) }
