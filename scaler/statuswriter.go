package scaler

import (
	"context"
	"encoding/json"
	"sync"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/qscale/qscale/scaler/status"
	"github.com/qscale/qscale/scaler/store"
)

// DefaultStatusQPS is how many status writes a second qscale makes at most, unless
// Options.StatusQPS says otherwise.
const DefaultStatusQPS = 10

// statusWriter writes the status annotations of workloads apart from the reconcilers, at a
// pace of its own. A reconcile only says which status it wants, so that the first statuses of
// a thousand workloads never stand in the way of their first HPAs (written inline, they would
// hold the reconcilers and share their API server budget; BENCHMARKS.md has the figures), and
// a status that changes again before it is written is written once. Only the leader writes: a
// replica that does not lead drops what it was asked. It is safe for concurrent use.
type statusWriter struct {
	client   client.Client
	records  *records
	limiter  *rate.Limiter // nil: no limit
	isLeader func() bool

	mu      sync.Mutex
	pending map[store.Target]pendingStatus
	order   []store.Target // the pending targets, oldest first
	wake    chan struct{}
}

// pendingStatus is a status to write on a workload. It holds no copy of the workload: with
// thousands of first statuses waiting their turn, each copy would be a kilobyte and more.
type pendingStatus struct {
	value string
	from  string // the workload's resourceVersion the status was computed from
}

func newStatusWriter(c client.Client, recs *records, limiter *rate.Limiter, isLeader func() bool) *statusWriter {
	return &statusWriter{client: c, records: recs, limiter: limiter, isLeader: isLeader,
		pending: map[store.Target]pendingStatus{}, wake: make(chan struct{}, 1)}
}

// want asks for value to be written on the workload t, replacing any status pending for it.
func (w *statusWriter) want(t store.Target, value, from string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.pending[t]; !ok {
		w.order = append(w.order, t)
	}
	w.pending[t] = pendingStatus{value: value, from: from}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// pendingFor returns the status waiting to be written on the workload, if any.
func (w *statusWriter) pendingFor(t store.Target) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p, ok := w.pending[t]
	return p.value, ok
}

// drop forgets the status pending for a workload: its triggers went, and its status with them.
func (w *statusWriter) drop(t store.Target) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.pending, t)
}

// next takes the oldest pending status.
func (w *statusWriter) next() (store.Target, pendingStatus, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.order) > 0 {
		t := w.order[0]
		w.order = w.order[1:]
		if p, ok := w.pending[t]; ok {
			delete(w.pending, t)
			return t, p, true
		}
	}
	return store.Target{}, pendingStatus{}, false
}

// Start writes pending statuses until ctx ends. It implements manager.Runnable.
func (w *statusWriter) Start(ctx context.Context) error {
	for {
		t, p, ok := w.next()
		if !ok {
			select {
			case <-ctx.Done():
				return nil
			case <-w.wake:
				continue
			}
		}
		if w.limiter != nil {
			if err := w.limiter.Wait(ctx); err != nil {
				return nil //nolint:nilerr // the context ended: the manager is stopping
			}
		}
		w.write(ctx, t, p)
	}
}

// flush writes every pending status now, without waiting on the limiter.
func (w *statusWriter) flush(ctx context.Context) {
	for {
		t, p, ok := w.next()
		if !ok {
			return
		}
		w.write(ctx, t, p)
	}
}

// write writes one status. A failure is logged and not retried here: the next reconcile of
// the workload, after its next poll, finds the status still differs and asks again.
func (w *statusWriter) write(ctx context.Context, t store.Target, p pendingStatus) {
	if w.isLeader != nil && !w.isLeader() {
		return
	}
	obj := workloadKinds[t.Kind].newObject()
	obj.SetNamespace(t.Namespace)
	obj.SetName(t.Name)
	if err := patchStatus(ctx, w.client, obj, p.value); err != nil {
		log.FromContext(ctx).Error(err, "writing the status of a workload", "workload", t.String())
		return
	}
	w.records.setStatus(t, statusWrite{from: p.from, value: p.value})
}

// patchStatus sets the status annotation of obj to value, or removes it when value is nil,
// with a JSON merge patch of that one annotation.
func patchStatus(ctx context.Context, c client.Client, obj client.Object, value any) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{status.Annotation: value}}})
	if err != nil {
		return err
	}
	// The patch is applied to a copy: the object read from the cache stays as it was read.
	target := obj.DeepCopyObject().(client.Object)
	return c.Patch(ctx, target, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(StatusFieldManager))
}
