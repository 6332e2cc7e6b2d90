package scaler

import (
	"context"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/qscale/qscale/sources"
)

// Setup adds to mgr a controller per workload kind and the Poller, and returns the Store
// that the metrics API reads. Controllers and Poller run on every replica (each serves fresh
// metrics); only the elected leader writes to the cluster.
func Setup(mgr manager.Manager, reg sources.Registry, metrics *Metrics, recorder Recorder) (*Store, error) {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &autoscalingv2.HorizontalPodAutoscaler{}, IndexScaleTarget, IndexHPAByScaleTarget); err != nil {
		return nil, err
	}
	store := NewStore(time.Now, metrics)
	wake := map[string]chan event.GenericEvent{}
	for kind := range workloadKinds {
		wake[kind] = make(chan event.GenericEvent, 1024)
	}
	notify := func(t Target) {
		obj := workloadKinds[t.Kind].newObject()
		obj.SetNamespace(t.Namespace)
		obj.SetName(t.Name)
		select {
		case wake[t.Kind] <- event.GenericEvent{Object: obj}:
		default: // the queue is full of wake-ups already; the next poll sends another
		}
	}
	poller := NewPoller(sources.NewPool(reg), store, notify, metrics)
	if err := mgr.Add(allReplicas{poller}); err != nil {
		return nil, err
	}
	leader := func() bool {
		select {
		case <-mgr.Elected():
			return true
		default:
			return false
		}
	}
	for kind, k := range workloadKinds {
		r := &Reconciler{Client: mgr.GetClient(), Kind: kind, Registry: reg, Store: store, Poller: poller, Recorder: recorder, IsLeader: leader}
		err := ctrl.NewControllerManagedBy(mgr).
			Named("qscale-"+kind).
			For(k.newObject(), builderPredicate()).
			Watches(&autoscalingv2.HorizontalPodAutoscaler{}, handler.EnqueueRequestsFromMapFunc(hpaTargets(k.apiKind))).
			Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(secretUsers(store, kind))).
			WatchesRawSource(source.Channel(wake[kind], &handler.EnqueueRequestForObject{})).
			WithOptions(controller.Options{NeedLeaderElection: ptr(false), MaxConcurrentReconciles: 4}).
			Complete(r)
		if err != nil {
			return nil, err
		}
	}
	return store, nil
}

// builderPredicate passes the workloads that have, or had, qscale.io/triggers: removing the
// annotation must still reach the reconciler, which then deletes the HPA.
func builderPredicate() builder.Predicates {
	return builder.WithPredicates(predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return HasTriggers(e.Object.GetAnnotations()) },
		DeleteFunc:  func(e event.DeleteEvent) bool { return HasTriggers(e.Object.GetAnnotations()) },
		GenericFunc: func(event.GenericEvent) bool { return true },
		UpdateFunc: func(e event.UpdateEvent) bool {
			return HasTriggers(e.ObjectOld.GetAnnotations()) || HasTriggers(e.ObjectNew.GetAnnotations())
		},
	})
}

// hpaTargets maps an HPA to the workload it scales, so that qscale hears of edits to its
// own HPAs and of other HPAs appearing or going on its workloads.
func hpaTargets(apiKind string) handler.MapFunc {
	return func(_ context.Context, o client.Object) []reconcile.Request {
		h, ok := o.(*autoscalingv2.HorizontalPodAutoscaler)
		if !ok || h.Spec.ScaleTargetRef.Kind != apiKind {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: h.Namespace, Name: h.Spec.ScaleTargetRef.Name}}}
	}
}

// secretUsers maps a Secret to the workloads of one kind whose triggers name it, so a
// rotated password takes effect without a restart.
func secretUsers(store *Store, kind string) handler.MapFunc {
	return func(_ context.Context, o client.Object) []reconcile.Request {
		var out []reconcile.Request
		for _, t := range store.UsingSecret(o.GetNamespace(), o.GetName()) {
			if t.Kind == kind {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: t.Namespace, Name: t.Name}})
			}
		}
		return out
	}
}

// allReplicas runs a Runnable on every replica, not only the elected leader.
type allReplicas struct{ manager.Runnable }

// NeedLeaderElection implements manager.LeaderElectionRunnable.
func (allReplicas) NeedLeaderElection() bool { return false }
