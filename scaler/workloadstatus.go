package scaler

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"k8s.io/apimachinery/pkg/types"
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

// writeStatus writes the workload's status annotation when the status differs from the one
// the workload carries, and only then: a reconcile follows every poll, and the status holds
// nothing that moves with a poll, so a steady workload costs no write. The write is a JSON
// merge patch of that one annotation: it needs no resourceVersion (a cache that lags cannot
// make it conflict), and it leaves every other field to its owner.
func (r *Reconciler) writeStatus(ctx context.Context, t store.Target, obj client.Object, d policy.Decision) error {
	have := obj.GetAnnotations()[status.Annotation]
	if last := r.records.lastStatus(t); last.from == obj.GetResourceVersion() && last.value != "" {
		// The cache has not seen qscale's last write yet: that write is what the workload
		// carries, and writing it again would cost a request for nothing.
		have = last.value
	}
	prev, err := status.Parse(have)
	if err != nil {
		prev = nil // absent, or edited into something else: written afresh
	}
	want := status.Next(prev, r.observe(t, obj, d), r.Store.Now()).Encode()
	if want == have {
		return nil
	}
	if err := r.patchStatus(ctx, obj, want); err != nil {
		return fmt.Errorf("writing the status of %s: %w", obj.GetName(), err)
	}
	r.records.setStatus(t, statusWrite{from: obj.GetResourceVersion(), value: want})
	return nil
}

// removeStatus removes the status annotation from a workload that no longer has triggers.
func (r *Reconciler) removeStatus(ctx context.Context, obj client.Object) error {
	if _, ok := obj.GetAnnotations()[status.Annotation]; !ok {
		return nil
	}
	if err := r.patchStatus(ctx, obj, nil); err != nil {
		return fmt.Errorf("removing the status of %s: %w", obj.GetName(), err)
	}
	return nil
}

// patchStatus sets the status annotation to value, or removes it when value is nil.
func (r *Reconciler) patchStatus(ctx context.Context, obj client.Object, value any) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{status.Annotation: value}}})
	if err != nil {
		return err
	}
	// The patch is applied to a copy: the object read from the cache stays as it was read.
	target := obj.DeepCopyObject().(client.Object)
	return r.Client.Patch(ctx, target, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(StatusFieldManager))
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
