package scaler

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/time/rate"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

	"github.com/qscale/qscale/internal/shard"
	"github.com/qscale/qscale/scaler/share"
	"github.com/qscale/qscale/scaler/spec"
	"github.com/qscale/qscale/scaler/store"
	"github.com/qscale/qscale/sources"
)

// Options are what Setup wires in. Zero values take the defaults stated.
type Options struct {
	Registry sources.Registry
	Metrics  *Metrics // nil records nothing
	Recorder Recorder
	// IsLeader reports whether this replica may write to the cluster; nil means always.
	IsLeader func() bool
	// SecretRefresh is how often the Secrets that triggers name are read again; default
	// DefaultSecretRefresh.
	SecretRefresh time.Duration
	// StatusQPS is how many status annotations are written a second at most, apart from the
	// HPA and scale writes, which it never delays; default DefaultStatusQPS.
	StatusQPS float64
	// Members, when set, divides the polling among replicas: this replica polls only the
	// connections it owns and sends their samples to the others through PeerClient; nil
	// means it polls every connection.
	Members      Members
	Identity     string
	PeerClient   func(shard.Member) (*http.Client, error)
	ShareMetrics *share.Metrics
}

// Members are the replicas that share the polling, as this replica sees them.
type Members interface {
	// Owns reports whether this replica polls the connection with key now.
	Owns(key string) bool
	// Peers are the other live replicas.
	Peers() []shard.Member
}

// Loop is the scaling loop that Setup adds to a manager.
type Loop struct {
	// Store holds the values that the metrics API serves.
	Store *store.Store
	// Samples takes the samples that other replicas post to share.Path; it is to be
	// served behind the metrics API server's authentication and authorization.
	Samples http.Handler

	poller *Poller
	sender *share.Sender
}

// Reshard is to be called when the members change: this replica stops polling the
// connections it lost, polls those it gained at once, and sends to the peers now live.
func (l *Loop) Reshard() {
	l.poller.Reshard()
	if l.sender != nil {
		l.sender.Reconcile()
	}
}

// sharedPolling is the Sharing of a replica among Members.
type sharedPolling struct {
	members Members
	sender  *share.Sender
}

func (s sharedPolling) Owns(key string) bool         { return s.members.Owns(key) }
func (s sharedPolling) Polled(polled []share.Polled) { s.sender.Send(polled) }

// Setup adds to mgr a controller per workload kind, the Poller and the Secret refresher, and
// returns the Loop whose Store the metrics API reads. Everything runs on every replica (each
// serves fresh metrics); only the replica that o.IsLeader names writes to the cluster.
// Secrets are read by name through the API reader, never cached by an informer.
func Setup(mgr manager.Manager, o Options) (*Loop, error) {
	if o.SecretRefresh == 0 {
		o.SecretRefresh = DefaultSecretRefresh
	}
	if o.StatusQPS <= 0 {
		o.StatusQPS = DefaultStatusQPS
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &autoscalingv2.HorizontalPodAutoscaler{}, IndexScaleTarget, IndexHPAByScaleTarget); err != nil {
		return nil, err
	}
	st := store.New(time.Now, store.Options{Label: NameLabel, Observer: o.Metrics})
	recs := newRecords()
	wake := map[string]chan event.GenericEvent{}
	for kind := range workloadKinds {
		wake[kind] = make(chan event.GenericEvent, 1024)
	}
	notify := func(t store.Target) {
		// The wake-up carries the workload's name alone, which is all the handler reads:
		// metadata, not a whole Deployment, for every workload at every poll.
		obj := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: t.Namespace, Name: t.Name}}
		select {
		case wake[t.Kind] <- event.GenericEvent{Object: obj}:
		default: // the queue is full of wake-ups already; the next poll sends another
		}
	}
	logger := mgr.GetLogger().WithName("poller")
	pool := sources.NewPool(o.Registry, sources.OnPanic(func(typ string, recovered any, stack []byte) {
		o.Metrics.sourcePanicked(typ)
		logger.Error(fmt.Errorf("%v", recovered), "a source failed unexpectedly; the poll failed and the source will be opened again", "type", typ, "stack", string(stack))
	}))
	loop := &Loop{Store: st, Samples: &share.Handler{Recorder: st, Notify: notify, Metrics: o.ShareMetrics, Log: mgr.GetLogger().WithName("share")}}
	var sharing Sharing
	if o.Members != nil {
		loop.sender = &share.Sender{Self: o.Identity, Peers: o.Members.Peers, Client: o.PeerClient, Metrics: o.ShareMetrics,
			Log: mgr.GetLogger().WithName("share")}
		if err := mgr.Add(loop.sender); err != nil {
			return nil, err
		}
		sharing = sharedPolling{members: o.Members, sender: loop.sender}
	}
	poller := NewPoller(pool, st, notify, o.Metrics, sharing)
	loop.poller = poller
	secrets := NewSecrets(mgr.GetAPIReader())
	if err := mgr.Add(allReplicas{poller}); err != nil {
		return nil, err
	}
	if err := mgr.Add(allReplicas{secretRefresher{secrets: secrets, records: recs, notify: notify, interval: o.SecretRefresh}}); err != nil {
		return nil, err
	}
	statuses := newStatusWriter(mgr.GetClient(), recs, rate.NewLimiter(rate.Limit(o.StatusQPS), max(1, int(o.StatusQPS))), o.IsLeader)
	if err := mgr.Add(allReplicas{statuses}); err != nil {
		return nil, err
	}
	for kind, k := range workloadKinds {
		r := &Reconciler{Client: mgr.GetClient(), Kind: kind, Registry: o.Registry, Store: st, Poller: poller,
			Secrets: secrets, Recorder: o.Recorder, Metrics: o.Metrics, IsLeader: o.IsLeader, records: recs, statuses: statuses}
		err := ctrl.NewControllerManagedBy(mgr).
			Named("qscale-"+kind).
			For(k.newObject(), builderPredicate()).
			Watches(&autoscalingv2.HorizontalPodAutoscaler{}, handler.EnqueueRequestsFromMapFunc(hpaTargets(k.apiKind))).
			WatchesRawSource(source.Channel(wake[kind], &handler.EnqueueRequestForObject{})).
			WithOptions(controller.Options{NeedLeaderElection: ptr(false), MaxConcurrentReconciles: 4}).
			Complete(r)
		if err != nil {
			return nil, err
		}
	}
	return loop, nil
}

// builderPredicate passes the workloads that have, or had, qscale.io/triggers: removing the
// annotation must still reach the reconciler, which then deletes the HPA and the status. A
// workload that carries a status and no triggers passes too: its triggers went while qscale
// was not running, and its status must go.
func builderPredicate() builder.Predicates {
	ours := func(o client.Object) bool {
		a := o.GetAnnotations()
		_, hasStatus := a[spec.AnnotationStatus]
		return spec.HasTriggers(a) || hasStatus
	}
	return builder.WithPredicates(predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return ours(e.Object) },
		DeleteFunc:  func(e event.DeleteEvent) bool { return ours(e.Object) },
		GenericFunc: func(event.GenericEvent) bool { return true },
		UpdateFunc:  func(e event.UpdateEvent) bool { return ours(e.ObjectOld) || ours(e.ObjectNew) },
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

// allReplicas runs a Runnable on every replica, not only the elected leader.
type allReplicas struct{ manager.Runnable }

// NeedLeaderElection implements manager.LeaderElectionRunnable.
func (allReplicas) NeedLeaderElection() bool { return false }
