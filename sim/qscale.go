package sim

import (
	"time"

	"github.com/qscale/qscale/scaler/policy"
)

// Qscale is qscale's own policy as a Scaler: a workload with one trigger, driven through
// policy.Workload as `qscale run` drives it: each poll observed on the trigger, then the
// decision, whose metric is what the HPA reads. A threshold trigger's value is the backlog,
// as a Kafka trigger's lag is.
type Qscale struct {
	w     *policy.Workload
	start time.Time
}

var _ Scaler = (*Qscale)(nil)

// NewQscale returns qscale's policy for a workload of spec with trigger.
func NewQscale(spec policy.Spec, trigger *policy.Trigger) *Qscale {
	start := time.Unix(0, 0).UTC()
	return &Qscale{w: policy.NewWorkload(spec, start, trigger), start: start}
}

// Poll implements Scaler.
func (q *Qscale) Poll(o Observation) Served {
	at := q.start.Add(o.Time)
	tr := q.w.Trigger(0)
	tr.Observe(policy.Observation{Value: o.Backlog, Active: o.Backlog > 0, Poll: policy.Poll{Time: at,
		Backlog: o.Backlog, Produced: o.Produced, Consumed: o.Consumed, Ready: o.Ready, Replicas: o.Replicas}})
	d := q.w.Decide(at, o.Replicas, o.Replicas)
	m := d.Metrics[0]
	return Served{Value: float64(m.Milli) / 1000, Target: tr.State(at).Target, OK: m.OK, ScaleTo: d.ScaleTo, Desired: d.Desired}
}
