package scaler

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/qscale/qscale/scaler/policy"
	"github.com/qscale/qscale/scaler/spec"
	"github.com/qscale/qscale/scaler/status"
	"github.com/qscale/qscale/scaler/store"
	"github.com/qscale/qscale/sources"
)

// StatusFieldManager is the field manager of qscale's writes of the status annotation, apart
// from its other writes, so that managedFields tell who owns the annotation.
const StatusFieldManager = "qscale-status"

// writeStatus asks for the workload's status annotation to be written when the status
// differs from the one the workload carries, and only then: a reconcile follows every poll,
// and the status holds nothing that moves with a poll, so a steady workload costs no write.
// The statusWriter writes it, apart from the reconcile.
func (r *Reconciler) writeStatus(t store.Target, obj client.Object, d policy.Decision) {
	have := obj.GetAnnotations()[status.Annotation]
	if p, ok := r.statuses.pendingFor(t); ok {
		have = p // the status this one follows, though not written yet
	} else if last := r.records.lastStatus(t); last.from == obj.GetResourceVersion() && last.value != "" {
		// The cache has not seen qscale's last write yet: that write is what the workload
		// carries, and writing it again would cost a request for nothing.
		have = last.value
	}
	prev, err := status.Parse(have)
	if err != nil {
		prev = nil // absent, or edited into something else: written afresh
	}
	want := status.Next(prev, r.observe(t, obj, d), r.Store.Now()).Encode()
	if want != have {
		r.statuses.want(t, want, obj.GetResourceVersion())
	}
}

// removeStatus removes the status annotation from a workload that no longer has triggers.
func (r *Reconciler) removeStatus(ctx context.Context, obj client.Object) error {
	if _, ok := obj.GetAnnotations()[status.Annotation]; !ok {
		return nil
	}
	if err := patchStatus(ctx, r.Client, obj, nil); err != nil {
		return fmt.Errorf("removing the status of %s: %w", obj.GetName(), err)
	}
	return nil
}

// observe is the state of a workload that its status tells: what stands in the way of its
// configuration, the decision's conditions, and the triggers of its last valid configuration.
func (r *Reconciler) observe(t store.Target, obj client.Object, d policy.Decision) status.Observation {
	s, triggers := r.records.current(t)
	o := status.Observation{
		Problem: r.records.trouble(t), Active: d.Active, Fallback: d.Fallback, Paused: d.Paused,
		Triggers: statusTriggers(triggers), Observed: spec.ConfigDigest(obj.GetAnnotations()),
	}
	states := r.Store.States(t)
	o.Unread = len(states) > 0 && !slices.ContainsFunc(states, func(st policy.TriggerState) bool { return st.Polled })
	if s != nil {
		o.PausedReplicas = s.PausedReplicas
	}
	return o
}

// statusTriggers tells each trigger by its name, type and target: never a parameter that may
// hold a secret.
func statusTriggers(triggers []sources.Trigger) []status.Trigger {
	out := make([]status.Trigger, len(triggers))
	for i, tr := range triggers {
		out[i] = status.Trigger{Name: tr.Name, Type: tr.Type}
		if age, ok := sources.BacklogAgeOf(tr.Config); ok {
			out[i].TargetBacklogAge = age.Age.String()
		} else {
			out[i].Target = strconv.FormatFloat(tr.Config.Target(), 'f', -1, 64)
		}
	}
	return out
}
