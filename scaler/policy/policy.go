// Package policy is qscale's replica decision: a pure function of plain values, with no
// Kubernetes, broker or metrics imports, so that a program outside qscale can run the very
// decision that `qscale run` makes.
//
// The entry point is Decide. Given a workload's Spec, the latest TriggerState of each of its
// triggers, its replica counts and the clock, it returns a Decision: the replica count to aim
// at, the move to or from zero to write through the scale subresource, and, for each trigger,
// the Metric to serve the HPA so that the HPA, with its tolerance, lands on that count. Stale
// says when a value is too old to serve or to scale down on; Milli converts a value to the
// thousandths the HPA computes with.
package policy

import "time"

// Spec is what Decide reads of a workload's configuration. The spec package builds it from
// the workload's qscale.io annotations.
type Spec struct {
	MinReplicas      int32 // 0 lets the workload scale to zero
	MaxReplicas      int32
	PollingInterval  time.Duration // how often the triggers are read
	CooldownPeriod   time.Duration // how long every trigger stays inactive before the move to zero
	FallbackReplicas int32         // 0: fallback is off
	FallbackFailures int32         // failed polls in a row before a trigger is in fallback
	Paused           bool          // the replicas are left as they are
	PausedReplicas   *int32        // when set, the replicas are set to it; it overrides Paused
	// ScaleUpTolerance and ScaleDownTolerance are the HPA's: it keeps the current size while
	// usage/(target × current) is within [1−ScaleDownTolerance, 1+ScaleUpTolerance]. The HPA
	// controller's default is DefaultTolerance; 0 means no tolerance at all.
	ScaleUpTolerance, ScaleDownTolerance float64
}

// DefaultTolerance is the HPA controller's default: it keeps the current size while the
// usage ratio is within 10 % of 1.
const DefaultTolerance = 0.1

// StaleAfter is how many polling intervals a value is served, and trusted for scaling down,
// after the poll that read it.
const StaleAfter = 3

// Stale reports whether a value read age ago, by a trigger polled every pollingInterval, is
// too old to serve or to scale down on.
func Stale(age, pollingInterval time.Duration) bool { return age > StaleAfter*pollingInterval }
