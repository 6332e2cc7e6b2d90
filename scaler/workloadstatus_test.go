package scaler

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/qscale/qscale/scaler/spec"
	"github.com/qscale/qscale/scaler/status"
	"github.com/qscale/qscale/scaler/store"
	"github.com/qscale/qscale/sources"
)

// statusWrites counts the patches of workloads, the only writes of workloads qscale makes
// besides their scale subresource, and checks that each is a status write.
func statusWrites(t *testing.T, n *int) interceptor.Funcs {
	return interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			switch obj.(type) {
			case *appsv1.Deployment, *appsv1.StatefulSet:
				*n++
				po := &client.PatchOptions{}
				po.ApplyOptions(opts)
				if po.FieldManager != StatusFieldManager || patch.Type() != types.MergePatchType {
					t.Errorf("a workload patch by %q of type %s: only the status is patched, by %q", po.FieldManager, patch.Type(), StatusFieldManager)
				}
			}
			return c.Patch(ctx, obj, patch, opts...)
		},
	}
}

// status reads the status annotation of "orders" as the API server holds it.
func (h *harness) status() (*status.Status, string) {
	h.t.Helper()
	var d appsv1.Deployment
	if err := h.client.Get(context.Background(), types.NamespacedName{Namespace: "shop", Name: "orders"}, &d); err != nil {
		h.t.Fatal(err)
	}
	v, ok := d.Annotations[status.Annotation]
	if !ok {
		return nil, ""
	}
	s, err := status.Parse(v)
	if err != nil {
		h.t.Fatalf("status %q: %v", v, err)
	}
	if s.Observed != spec.ConfigDigest(d.Annotations) {
		h.t.Errorf("the status describes annotations %s, the workload has %s", s.Observed, spec.ConfigDigest(d.Annotations))
	}
	return s, v
}

// Every workload with triggers carries its status, those qscale creates no HPA for among
// them; it goes with the triggers.
func TestReconcileWritesTheStatus(t *testing.T) {
	broken := "- type: kafka\n  metadata: {bootstrapServers: 'k:9092'}\n"
	withAuth := "- type: kafka\n  name: orders\n  metadata: {bootstrapServers: 'k:9092', consumerGroup: g, topic: t, sasl: plain, username: u}\n  authenticationRef: {name: creds}\n"
	tests := []struct {
		name    string
		ann     map[string]string
		samples []sources.Sample // polled before the last reconcile
		want    status.Status    // Since and Observed are not compared
	}{
		{name: "valid, not read yet", ann: map[string]string{spec.AnnotationTriggers: ordersTrigger},
			want: status.Status{Ready: true, Triggers: []status.Trigger{{Name: "orders", Type: "kafka", Target: "50"}}}},
		{name: "valid and active", ann: map[string]string{spec.AnnotationTriggers: ordersTrigger},
			samples: []sources.Sample{{Value: 420, Active: true}},
			want:    status.Status{Ready: true, Active: true, Triggers: []status.Trigger{{Name: "orders", Type: "kafka", Target: "50"}}}},
		{name: "never valid", ann: map[string]string{spec.AnnotationTriggers: broken},
			want: status.Status{Reason: "qscale.io/triggers: [0] (kafka-0).metadata.consumerGroup: is required"}},
		{name: "paused at replicas", ann: map[string]string{spec.AnnotationTriggers: ordersTrigger, spec.AnnotationPausedReplicas: "2"},
			want: status.Status{Ready: true, Paused: true, PausedReplicas: ptr[int32](2), Triggers: []status.Trigger{{Name: "orders", Type: "kafka", Target: "50"}}}},
		{name: "paused", ann: map[string]string{spec.AnnotationTriggers: ordersTrigger, spec.AnnotationPaused: "true"},
			want: status.Status{Ready: true, Paused: true, Triggers: []status.Trigger{{Name: "orders", Type: "kafka", Target: "50"}}}},
		{name: "in fallback", ann: map[string]string{spec.AnnotationTriggers: ordersTrigger, spec.AnnotationFallbackReplicas: "3", spec.AnnotationFallbackFailures: "2"},
			samples: []sources.Sample{{Err: errors.New("down")}, {Err: errors.New("down")}},
			want:    status.Status{Ready: true, Fallback: true, Triggers: []status.Trigger{{Name: "orders", Type: "kafka", Target: "50"}}}},
		{name: "backlog age", ann: map[string]string{spec.AnnotationTriggers: "- type: kafka\n  name: orders\n  metadata: {bootstrapServers: 'k:9092', consumerGroup: g, topic: t, targetBacklogAge: 30s}\n"},
			want: status.Status{Ready: true, Triggers: []status.Trigger{{Name: "orders", Type: "kafka", TargetBacklogAge: "30s"}}}},
		{name: "a Secret is never told", ann: map[string]string{spec.AnnotationTriggers: withAuth},
			want: status.Status{Ready: true, Triggers: []status.Trigger{{Name: "orders", Type: "kafka", Target: "10"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			writes := 0
			secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "shop"}, Data: map[string][]byte{"password": []byte("hunter2")}}
			h := newHarnessIntercepted(t, store.KindDeployment, statusWrites(t, &writes), deployment("orders", 1, tt.ann), secret)
			h.reconcile("orders")
			for _, s := range tt.samples {
				h.sample(s)
			}
			h.reconcile("orders")
			got, raw := h.status()
			if got == nil {
				t.Fatal("no status annotation")
			}
			got.Since, got.Observed = status.Since{}, ""
			if got.Encode() != tt.want.Encode() {
				t.Errorf("status\n got %s\nwant %s", got.Encode(), tt.want.Encode())
			}
			if strings.Contains(raw, "hunter2") || strings.Contains(raw, "k:9092") {
				t.Errorf("the status tells a parameter: %s", raw)
			}
			if max := 1 + min(len(tt.samples), 1); writes > max {
				t.Errorf("%d status writes, want at most %d", writes, max)
			}

			h.update("orders", func(d *appsv1.Deployment) { delete(d.Annotations, spec.AnnotationTriggers) })
			h.reconcile("orders")
			if s, _ := h.status(); s != nil {
				t.Errorf("the status stayed after the triggers went: %+v", s)
			}
		})
	}
}

// The status is written when the state changes and never because a poll happened: polls
// whose values move cost no write, and qscale's own write, coming back as a watch event,
// writes nothing more.
func TestReconcileStatusWriteCost(t *testing.T) {
	const polls = 100
	writes := 0
	h := newHarnessIntercepted(t, store.KindDeployment, statusWrites(t, &writes), deployment("orders", 1, map[string]string{
		spec.AnnotationTriggers: ordersTrigger, spec.AnnotationFallbackReplicas: "3", spec.AnnotationFallbackFailures: "2",
	}))
	h.reconcile("orders")
	h.reconcile("orders") // qscale's own write, seen
	if writes != 1 {
		t.Fatalf("%d writes for the first status, want 1", writes)
	}
	steady := func(what string, sample func(i int) sources.Sample) {
		t.Helper()
		before := writes
		for i := range polls {
			h.sample(sample(i))
			h.now = h.now.Add(10 * time.Second)
			h.reconcile("orders")
		}
		t.Logf("%s: %d writes in %d polls", what, writes-before, polls)
	}
	change := func(what string, sample sources.Sample) {
		t.Helper()
		before := writes
		h.sample(sample)
		h.reconcile("orders")
		h.reconcile("orders") // qscale's own write, seen
		if writes-before != 1 {
			t.Fatalf("%s: %d writes, want 1", what, writes-before)
		}
	}
	check := func(what string, want int) {
		t.Helper()
		if writes != want {
			t.Fatalf("%s: %d writes in all, want %d", what, writes, want)
		}
	}
	change("becoming active", sources.Sample{Value: 60, Active: true})
	steady("active, the lag moving every poll", func(i int) sources.Sample { return sources.Sample{Value: float64(60 + 37*i), Active: true} })
	check("steady and active", 2)
	change("becoming idle", sources.Sample{Value: 0})
	steady("idle", func(int) sources.Sample { return sources.Sample{Value: 0} })
	check("steady and idle", 3)
	h.sample(sources.Sample{Err: errors.New("down")})
	h.reconcile("orders")
	check("one failed poll, not yet in fallback", 3)
	change("fallback starting", sources.Sample{Err: errors.New("down")})
	steady("in fallback", func(int) sources.Sample { return sources.Sample{Err: errors.New("down")} })
	check("steady in fallback", 4)
	change("fallback ending, active", sources.Sample{Value: 60, Active: true})
	t.Logf("%d writes in all over %d polls: the first status, then one per change of state (4)", writes, 3*polls+5)

	// A restarted qscale, or a new leader, knows nothing of the workload but its status:
	// before its first poll and after it, it writes nothing.
	h.restart()
	h.reconcile("orders")
	h.sample(sources.Sample{Value: 90, Active: true})
	h.reconcile("orders")
	check("after a restart", 5)
}

// restart gives the harness a new reconciler, with an empty Store and records, over the same
// cluster: qscale restarted.
func (h *harness) restart() {
	h.store = store.New(func() time.Time { return h.now }, store.Options{Label: NameLabel})
	pool := sources.NewPool(h.r.Registry)
	h.t.Cleanup(pool.Close)
	r := *h.r
	r.Store, r.Poller, r.records = h.store, NewPoller(pool, h.store, nil, nil, nil), newRecords()
	r.statuses = newStatusWriter(r.Client, r.records, nil, r.IsLeader)
	h.r = &r
}

// A cache that has not seen qscale's write yet hands the reconciler the workload without it;
// the write is not repeated.
func TestReconcileStatusThroughALaggingCache(t *testing.T) {
	writes := 0
	var frozen *appsv1.Deployment
	funcs := statusWrites(t, &writes)
	funcs.Get = func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		if d, ok := obj.(*appsv1.Deployment); ok && frozen != nil {
			frozen.DeepCopyInto(d)
			return nil
		}
		return c.Get(ctx, key, obj, opts...)
	}
	h := newHarnessIntercepted(t, store.KindDeployment, funcs, deployment("orders", 1, map[string]string{spec.AnnotationTriggers: ordersTrigger}))
	var before appsv1.Deployment
	if err := h.client.Get(context.Background(), types.NamespacedName{Namespace: "shop", Name: "orders"}, &before); err != nil {
		t.Fatal(err)
	}
	frozen = &before
	for range 3 {
		h.sample(sources.Sample{Value: 10})
		h.now = h.now.Add(10 * time.Second)
		h.reconcile("orders")
	}
	if writes != 1 {
		t.Fatalf("%d writes while the cache lagged, want 1; status %s", writes, h.r.records.lastStatus(inShop("orders")))
	}
	frozen = nil // the cache catches up
	h.sample(sources.Sample{Value: 80, Active: true})
	h.reconcile("orders")
	first := t0.Add(10 * time.Second) // the first reconcile
	if s, _ := h.status(); writes != 2 || !s.Active || !s.Since.Ready.Equal(first) {
		t.Fatalf("%d writes; status %+v: want a second write, active, ready since %v", writes, s, first)
	}
}

// Only the leader writes the status.
func TestReconcileOnlyTheLeaderWritesTheStatus(t *testing.T) {
	writes := 0
	h := newHarnessIntercepted(t, store.KindDeployment, statusWrites(t, &writes), deployment("orders", 1, map[string]string{spec.AnnotationTriggers: ordersTrigger}))
	h.leader = false
	h.reconcile("orders")
	if writes != 0 {
		t.Fatalf("a replica that does not lead wrote the status %d times", writes)
	}
	h.leader = true
	h.reconcile("orders")
	if s, _ := h.status(); s == nil || writes != 1 {
		t.Fatalf("the leader wrote %d times: %+v", writes, s)
	}
}
