package scaler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/qscale/qscale/scaler/spec"
	"github.com/qscale/qscale/scaler/store"
	"github.com/qscale/qscale/sources"
	"github.com/qscale/qscale/sources/kafka"
)

const ordersTrigger = `
- type: kafka
  name: orders
  metadata: {bootstrapServers: "k:9092", consumerGroup: g, topic: orders, lagThreshold: "50"}
`

// t0 is the harness's clock at the start of a test.
var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// recordedEvent is one Event the reconciler recorded.
type recordedEvent struct{ typ, reason, note string }

type eventLog struct {
	mu     sync.Mutex
	events []recordedEvent
}

func (l *eventLog) Eventf(_, _ runtime.Object, typ, reason, _, note string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(args) > 0 {
		note = args[0].(string)
	}
	l.events = append(l.events, recordedEvent{typ, reason, note})
}

// take returns the events recorded since the last take.
func (l *eventLog) take() []recordedEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.events
	l.events = nil
	return out
}

type harness struct {
	t      *testing.T
	client client.Client
	store  *store.Store
	events *eventLog
	now    time.Time
	leader bool
	r      *Reconciler
	reg    *prometheus.Registry
}

func newHarness(t *testing.T, kind string, objs ...client.Object) *harness {
	t.Helper()
	return newHarnessIntercepted(t, kind, interceptor.Funcs{}, objs...)
}

// newHarnessIntercepted is newHarness with a client whose calls funcs may answer, as the
// API server would where the fake client cannot (its validation, say).
func newHarnessIntercepted(t *testing.T, kind string, funcs interceptor.Funcs, objs ...client.Object) *harness {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, events: &eventLog{}, now: t0, leader: true, reg: prometheus.NewRegistry()}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).
		WithIndex(&autoscalingv2.HorizontalPodAutoscaler{}, IndexScaleTarget, IndexHPAByScaleTarget).
		WithInterceptorFuncs(funcs).Build()
	h.client = c
	h.store = store.New(func() time.Time { return h.now }, store.Options{Label: NameLabel})
	reg := sources.Registry{"kafka": kafka.Kind}
	pool := sources.NewPool(reg)
	t.Cleanup(pool.Close)
	recs, leader := newRecords(), func() bool { return h.leader }
	reads := qscaleView(t, c)
	h.r = &Reconciler{Client: reads, Kind: kind, Registry: reg, Store: h.store,
		Poller: NewPoller(pool, h.store, nil, nil, nil), Secrets: NewSecrets(h.client), Recorder: h.events, Metrics: NewMetrics(h.reg), IsLeader: leader,
		records: recs, statuses: newStatusWriter(reads, recs, nil, leader)}
	return h
}

// inShop is the Deployment name in the namespace "shop", as the Store names it.
func inShop(name string) store.Target {
	return store.Target{Namespace: "shop", Kind: store.KindDeployment, Name: name}
}

func deployment(name string, replicas int32, ann map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Annotations: ann, UID: types.UID("uid-" + name)},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr(replicas)},
		Status:     appsv1.DeploymentStatus{Replicas: replicas},
	}
}

func (h *harness) reconcile(name string) {
	h.t.Helper()
	if _, err := h.r.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "shop", Name: name}}); err != nil {
		h.t.Fatalf("reconcile: %v", err)
	}
	h.r.statuses.flush(context.Background()) // as the statusWriter would, soon after
}

// sample records a poll outcome for every trigger of "orders", as the Poller would.
func (h *harness) sample(s sources.Sample) {
	t := store.Target{Namespace: "shop", Kind: h.r.Kind, Name: "orders"}
	_, triggers := h.r.records.current(t)
	for _, tr := range triggers {
		h.store.Record(t, tr, s, h.now)
	}
}

// refreshSecrets reads the named Secrets again, as the refresher does every interval.
func (h *harness) refreshSecrets() {
	h.t.Helper()
	if _, err := h.r.Secrets.Refresh(context.Background(), h.r.records.namedSecrets()); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) hpa(name string) (*autoscalingv2.HorizontalPodAutoscaler, bool) {
	var hpa autoscalingv2.HorizontalPodAutoscaler
	err := h.client.Get(context.Background(), types.NamespacedName{Namespace: "shop", Name: name}, &hpa)
	if apierrors.IsNotFound(err) {
		return nil, false
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return &hpa, true
}

// replicas returns the spec.replicas of "orders".
func (h *harness) replicas() int32 {
	var d appsv1.Deployment
	if err := h.client.Get(context.Background(), types.NamespacedName{Namespace: "shop", Name: "orders"}, &d); err != nil {
		h.t.Fatal(err)
	}
	return *d.Spec.Replicas
}

func (h *harness) update(name string, mutate func(*appsv1.Deployment)) {
	var d appsv1.Deployment
	if err := h.client.Get(context.Background(), types.NamespacedName{Namespace: "shop", Name: name}, &d); err != nil {
		h.t.Fatal(err)
	}
	mutate(&d)
	if err := h.client.Update(context.Background(), &d); err != nil {
		h.t.Fatal(err)
	}
}

func wantEvents(t *testing.T, got []recordedEvent, reasons ...string) {
	t.Helper()
	var have []string
	for _, e := range got {
		have = append(have, e.reason)
	}
	if strings.Join(have, ",") != strings.Join(reasons, ",") {
		t.Fatalf("events %v, want %v", got, reasons)
	}
}

func TestReconcileCreatesTheHPA(t *testing.T) {
	h := newHarness(t, store.KindDeployment, deployment("orders", 2, map[string]string{
		spec.AnnotationTriggers: ordersTrigger, spec.AnnotationMinReplicas: "2", spec.AnnotationMaxReplicas: "12",
		spec.AnnotationHPABehavior: "scaleDown: {stabilizationWindowSeconds: 30}",
	}))
	h.reconcile("orders")
	hpa, ok := h.hpa("qscale-orders")
	if !ok {
		t.Fatal("no HPA created")
	}
	checkHPA(t, hpa)
	// The metric is served once the trigger has been read.
	if _, _, err := h.store.Value(inShop("orders"), "qscale-orders"); !errors.Is(err, store.ErrNoValue) {
		t.Errorf("before a poll: %v, want ErrNoValue", err)
	}
	h.sample(sources.Sample{Value: 420, Active: true})
	h.reconcile("orders")
	if v, _, err := h.store.Value(inShop("orders"), "qscale-orders"); err != nil || v != 420000 {
		t.Errorf("served %d, %v; want 420000 milli", v, err)
	}
	if _, _, err := h.store.Value(inShop("orders"), "qscale-nosuch"); !errors.Is(err, store.ErrUnknownMetric) {
		t.Errorf("unknown metric: %v", err)
	}
	// A changed annotation updates the HPA; removing the triggers deletes it.
	h.update("orders", func(d *appsv1.Deployment) { d.Annotations[spec.AnnotationMaxReplicas] = "20" })
	h.reconcile("orders")
	if hpa, _ := h.hpa("qscale-orders"); hpa.Spec.MaxReplicas != 20 {
		t.Errorf("max after the edit = %d, want 20", hpa.Spec.MaxReplicas)
	}
	h.update("orders", func(d *appsv1.Deployment) { delete(d.Annotations, spec.AnnotationTriggers) })
	h.reconcile("orders")
	if _, ok := h.hpa("qscale-orders"); ok {
		t.Error("the HPA should be deleted with the triggers annotation")
	}
}

// An update of qscale's HPA makes it what the annotations call for, whole, though the cache
// holds none of its spec: what the annotations no longer ask for goes (a behavior), and so
// does a label someone else added.
func TestReconcileReplacesTheHPAWhole(t *testing.T) {
	h := newHarness(t, store.KindDeployment, deployment("orders", 2, map[string]string{
		spec.AnnotationTriggers: ordersTrigger, spec.AnnotationHPABehavior: "scaleDown: {stabilizationWindowSeconds: 30}",
	}))
	h.reconcile("orders")
	hpa, ok := h.hpa("qscale-orders")
	if !ok || hpa.Spec.Behavior == nil {
		t.Fatalf("the HPA has no behavior: %+v", hpa)
	}
	before := hpa.Annotations[annotationSpecHash]
	hpa.Labels["team"] = "payments"
	if err := h.client.Update(context.Background(), hpa); err != nil {
		t.Fatal(err)
	}
	h.update("orders", func(d *appsv1.Deployment) { delete(d.Annotations, spec.AnnotationHPABehavior) })
	h.reconcile("orders")
	hpa, _ = h.hpa("qscale-orders")
	if hpa.Spec.Behavior != nil {
		t.Errorf("the behavior outlived its annotation: %+v", hpa.Spec.Behavior)
	}
	if _, ok := hpa.Labels["team"]; ok || hpa.Labels[LabelManagedBy] != ManagedByQscale {
		t.Errorf("labels %v, want qscale's alone", hpa.Labels)
	}
	if ref := metav1.GetControllerOf(hpa); ref == nil || ref.UID != "uid-orders" {
		t.Errorf("the HPA's controller is %+v", ref)
	}
	if len(hpa.Spec.Metrics) != 1 || hpa.Spec.ScaleTargetRef.Name != "orders" {
		t.Errorf("spec %+v, want the trigger's metric and the workload", hpa.Spec)
	}
	if hpa.Annotations[annotationSpecHash] == before {
		t.Errorf("the spec digest stayed %s", before)
	}
}

// checkHPA checks the HPA made for "orders" with min 2, max 12 and a behavior.
func checkHPA(t *testing.T, hpa *autoscalingv2.HorizontalPodAutoscaler) {
	t.Helper()
	ref := metav1.GetControllerOf(hpa)
	m := hpa.Spec.Metrics[0].External
	checks := []struct {
		what string
		ok   bool
	}{
		{"owner reference", ref != nil && ref.Kind == "Deployment" && ref.Name == "orders"},
		{"managed-by label", hpa.Labels[LabelManagedBy] == ManagedByQscale},
		{"min and max", *hpa.Spec.MinReplicas == 2 && hpa.Spec.MaxReplicas == 12},
		{"scale target", hpa.Spec.ScaleTargetRef.Kind == "Deployment" && hpa.Spec.ScaleTargetRef.Name == "orders"},
		{"metric name", m.Metric.Name == "qscale-orders"},
		{"metric selector", m.Metric.Selector.MatchLabels[LabelKind] == "deployment" && m.Metric.Selector.MatchLabels[LabelName] == "orders"},
		{"AverageValue target", m.Target.Type == autoscalingv2.AverageValueMetricType && m.Target.AverageValue.String() == "50"},
		{"behavior", hpa.Spec.Behavior != nil && *hpa.Spec.Behavior.ScaleDown.StabilizationWindowSeconds == 30},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("HPA %s is wrong: %+v", c.what, hpa.Spec)
		}
	}
}

func TestReconcileBadConfiguration(t *testing.T) {
	h := newHarness(t, store.KindDeployment,
		deployment("broken", 3, map[string]string{spec.AnnotationTriggers: "- type: kafka\n  metadata: {bootstrapServers: 'k:9092'}\n"}),
		deployment("good", 3, map[string]string{spec.AnnotationTriggers: ordersTrigger}))
	h.reconcile("broken")
	h.reconcile("good")
	if _, ok := h.hpa("qscale-broken"); ok {
		t.Error("an HPA was created for a workload that was never valid")
	}
	if _, ok := h.hpa("qscale-good"); !ok {
		t.Error("a bad annotation elsewhere stopped a valid workload")
	}
	events := h.events.take()
	wantEvents(t, events, ReasonInvalidScalingConfig)
	if !strings.Contains(events[0].note, "qscale.io/triggers: [0] (kafka-0).metadata.consumerGroup: is required") {
		t.Errorf("event note %q does not name annotation, trigger and field", events[0].note)
	}
	h.reconcile("broken")
	wantEvents(t, h.events.take()) // the same problem is not reported again
	h.wantConfigInvalid(map[string]float64{"broken": 1, "good": 0})

	// A valid workload that breaks keeps its HPA unchanged, then recovers.
	before, _ := h.hpa("qscale-good")
	h.update("good", func(d *appsv1.Deployment) { d.Annotations[spec.AnnotationMaxReplicas] = "lots" })
	h.reconcile("good")
	after, ok := h.hpa("qscale-good")
	if !ok || after.ResourceVersion != before.ResourceVersion {
		t.Error("the HPA of a workload whose annotation broke was changed")
	}
	wantEvents(t, h.events.take(), ReasonInvalidScalingConfig)
	h.update("good", func(d *appsv1.Deployment) { d.Annotations[spec.AnnotationMaxReplicas] = "30" })
	h.reconcile("good")
	wantEvents(t, h.events.take(), ReasonScalingConfigValid)
	if hpa, _ := h.hpa("qscale-good"); hpa.Spec.MaxReplicas != 30 {
		t.Errorf("max after the fix = %d", hpa.Spec.MaxReplicas)
	}
	// The series goes with the workload's triggers.
	h.update("broken", func(d *appsv1.Deployment) { delete(d.Annotations, spec.AnnotationTriggers) })
	h.reconcile("broken")
	h.wantConfigInvalid(map[string]float64{"good": 0})
}

// wantConfigInvalid checks the qscale_config_invalid series: the value for each workload of
// "shop", and no other series.
func (h *harness) wantConfigInvalid(want map[string]float64) {
	h.t.Helper()
	families, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "qscale_config_invalid" {
			continue
		}
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			got[strings.TrimPrefix(l["target"], store.KindDeployment+"/")] = m.GetGauge().GetValue()
		}
	}
	if !maps.Equal(got, want) {
		h.t.Errorf("qscale_config_invalid = %v, want %v", got, want)
	}
}

func TestReconcileNeverTouchesAnotherHPA(t *testing.T) {
	foreign := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "team-hpa", Namespace: "shop"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{MaxReplicas: 5,
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "orders"}},
	}
	squatter := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "qscale-payments", Namespace: "shop"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{MaxReplicas: 7,
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "elsewhere"}},
	}
	h := newHarness(t, store.KindDeployment, foreign, squatter,
		deployment("orders", 1, map[string]string{spec.AnnotationTriggers: ordersTrigger}),
		deployment("payments", 1, map[string]string{spec.AnnotationTriggers: ordersTrigger}))
	h.reconcile("orders")
	h.reconcile("payments")
	if _, ok := h.hpa("qscale-orders"); ok {
		t.Error("qscale created an HPA for a workload another HPA scales")
	}
	if hpa, _ := h.hpa("qscale-payments"); hpa.Spec.MaxReplicas != 7 {
		t.Error("qscale edited an HPA it does not own")
	}
	wantEvents(t, h.events.take(), ReasonHPAConflict, ReasonHPAConflict)
	h.update("orders", func(d *appsv1.Deployment) { delete(d.Annotations, spec.AnnotationTriggers) })
	h.reconcile("orders")
	if _, ok := h.hpa("team-hpa"); !ok {
		t.Error("qscale deleted an HPA it does not own")
	}
}

func TestReconcileScaleToZeroAndBack(t *testing.T) {
	h := newHarness(t, store.KindDeployment, deployment("orders", 1, map[string]string{
		spec.AnnotationTriggers: ordersTrigger, spec.AnnotationMinReplicas: "0", spec.AnnotationCooldownPeriod: "1m",
	}))
	h.reconcile("orders")
	h.sample(sources.Sample{Value: 0})
	h.reconcile("orders")
	if got := h.replicas(); got != 1 {
		t.Fatalf("scaled before the cooldown: %d", got)
	}
	h.now = h.now.Add(time.Minute)
	h.sample(sources.Sample{Value: 0})
	h.reconcile("orders")
	if got := h.replicas(); got != 0 {
		t.Fatalf("replicas after the cooldown = %d, want 0", got)
	}
	wantEvents(t, h.events.take(), ReasonScaledToZero)

	h.sample(sources.Sample{Err: errors.New("broker down")})
	h.reconcile("orders")
	if got := h.replicas(); got != 0 {
		t.Fatalf("a failing source woke the workload: %d", got)
	}
	wantEvents(t, h.events.take(), store.ReasonSourceError)
	h.sample(sources.Sample{Err: errors.New("broker down")})
	h.reconcile("orders")
	wantEvents(t, h.events.take()) // not repeated

	h.sample(sources.Sample{Value: 3, Active: true})
	h.reconcile("orders")
	if got := h.replicas(); got != 1 {
		t.Fatalf("replicas after activation = %d, want 1", got)
	}
	wantEvents(t, h.events.take(), store.ReasonSourceRecovered, ReasonActivated)
}

func TestReconcilePause(t *testing.T) {
	h := newHarness(t, store.KindDeployment, deployment("orders", 5, map[string]string{spec.AnnotationTriggers: ordersTrigger}))
	h.reconcile("orders")
	if _, ok := h.hpa("qscale-orders"); !ok {
		t.Fatal("no HPA")
	}
	h.update("orders", func(d *appsv1.Deployment) { d.Annotations[spec.AnnotationPausedReplicas] = "2" })
	h.reconcile("orders")
	if _, ok := h.hpa("qscale-orders"); ok {
		t.Error("the HPA should go while paused")
	}
	if got := h.replicas(); got != 2 {
		t.Errorf("paused replicas: %d, want 2", got)
	}
	h.update("orders", func(d *appsv1.Deployment) {
		delete(d.Annotations, spec.AnnotationPausedReplicas)
		d.Annotations[spec.AnnotationPaused] = "true"
		d.Spec.Replicas = ptr[int32](4)
	})
	h.reconcile("orders")
	if got := h.replicas(); got != 4 {
		t.Errorf("paused changed replicas to %d", got)
	}
	h.update("orders", func(d *appsv1.Deployment) { delete(d.Annotations, spec.AnnotationPaused) })
	h.reconcile("orders")
	if _, ok := h.hpa("qscale-orders"); !ok {
		t.Error("the HPA should come back on resume")
	}
}

func TestReconcileOnlyTheLeaderWrites(t *testing.T) {
	h := newHarness(t, store.KindDeployment, deployment("orders", 0, map[string]string{spec.AnnotationTriggers: ordersTrigger, spec.AnnotationMinReplicas: "0"}))
	h.leader = false
	h.reconcile("orders")
	h.sample(sources.Sample{Value: 80, Active: true})
	h.reconcile("orders")
	if _, ok := h.hpa("qscale-orders"); ok {
		t.Error("a non-leader created an HPA")
	}
	if got := h.replicas(); got != 0 {
		t.Error("a non-leader scaled the workload")
	}
	if len(h.events.take()) != 0 {
		t.Error("a non-leader recorded Events")
	}
	if _, _, err := h.store.Value(inShop("orders"), "qscale-orders"); err != nil {
		t.Errorf("a non-leader must still serve metrics: %v", err)
	}
}

func TestReconcileReadsTheSecret(t *testing.T) {
	withAuth := "- type: kafka\n  name: orders\n  metadata: {bootstrapServers: 'k:9092', consumerGroup: g, topic: t, sasl: plain, username: u}\n  authenticationRef: {name: creds}\n"
	h := newHarness(t, store.KindDeployment, deployment("orders", 1, map[string]string{spec.AnnotationTriggers: withAuth}))
	h.reconcile("orders")
	events := h.events.take()
	wantEvents(t, events, ReasonInvalidScalingConfig)
	if !strings.Contains(events[0].note, `Secret "creds" does not exist`) {
		t.Errorf("note %q", events[0].note)
	}
	if got := h.r.records.usingSecret("shop", "creds"); len(got) != 1 {
		t.Fatalf("the workload is not indexed under its Secret: %v", got)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "shop"}, Data: map[string][]byte{"password": []byte("hunter2")}}
	if err := h.client.Create(context.Background(), secret); err != nil {
		t.Fatal(err)
	}
	h.reconcile("orders")
	if _, ok := h.hpa("qscale-orders"); ok {
		t.Fatal("the Secret was read again before a refresh: every reconcile would read the API server")
	}
	h.refreshSecrets()
	h.reconcile("orders")
	if _, ok := h.hpa("qscale-orders"); !ok {
		t.Error("no HPA once the Secret exists")
	}
	for _, e := range append(events, h.events.take()...) {
		if strings.Contains(e.note, "hunter2") {
			t.Errorf("an Event reveals the Secret: %q", e.note)
		}
	}
}

func TestReconcileStatefulSet(t *testing.T) {
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "ledger", Namespace: "shop", Annotations: map[string]string{spec.AnnotationTriggers: ordersTrigger}},
		Spec:       appsv1.StatefulSetSpec{Replicas: ptr[int32](1)},
	}
	h := newHarness(t, store.KindStatefulSet, sts)
	h.reconcile("ledger")
	hpa, ok := h.hpa("qscale-ledger")
	if !ok || hpa.Spec.ScaleTargetRef.Kind != "StatefulSet" || hpa.Spec.Metrics[0].External.Metric.Selector.MatchLabels[LabelKind] != "statefulset" {
		t.Fatalf("HPA for a StatefulSet: %+v", hpa)
	}
}

func TestReconcileForgetsDeletedWorkloads(t *testing.T) {
	h := newHarness(t, store.KindDeployment, deployment("orders", 1, map[string]string{spec.AnnotationTriggers: ordersTrigger}))
	h.reconcile("orders")
	if err := h.client.Delete(context.Background(), deployment("orders", 1, nil)); err != nil {
		t.Fatal(err)
	}
	h.reconcile("orders")
	if names := h.store.MetricNames(); len(names) != 0 {
		t.Errorf("metrics still listed for a deleted workload: %v", names)
	}
}

// A reconcile that follows a poll reloads nothing: the configuration is compiled again only
// when the qscale.io annotations or a Secret they name change.
func TestReconcileReloadsOnlyOnChange(t *testing.T) {
	h := newHarness(t, store.KindDeployment, deployment("orders", 1, map[string]string{spec.AnnotationTriggers: ordersTrigger}))
	compiled := 0
	kind := kafka.Kind
	newConfig := kind.NewConfig
	kind.NewConfig = func() sources.Config { compiled++; return newConfig() }
	h.r.Registry = sources.Registry{"kafka": kind}
	h.reconcile("orders")
	for range 3 {
		h.sample(sources.Sample{Value: 10, Active: true})
		h.reconcile("orders")
	}
	if compiled != 1 {
		t.Fatalf("compiled %d times across polls, want 1", compiled)
	}
	h.update("orders", func(d *appsv1.Deployment) { d.Annotations[spec.AnnotationMaxReplicas] = "7" })
	h.reconcile("orders")
	h.update("orders", func(d *appsv1.Deployment) { d.Labels = map[string]string{"team": "x"} }) // not qscale's business
	h.reconcile("orders")
	if compiled != 2 {
		t.Fatalf("compiled %d times, want 2: once more for the annotation, not for the label", compiled)
	}
}

// An edit that leaves a trigger as it was (another annotation, a key of its Secret that no
// parameter reads) keeps its samples and its count of failed polls.
func TestReconcileKeepsTheStateOfAnUnchangedTrigger(t *testing.T) {
	withAuth := "- type: kafka\n  name: orders\n  metadata: {bootstrapServers: 'k:9092', consumerGroup: g, topic: t, sasl: plain, username: u}\n  authenticationRef: {name: creds}\n"
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "shop"}, Data: map[string][]byte{"password": []byte("pw")}}
	h := newHarness(t, store.KindDeployment, deployment("orders", 1, map[string]string{spec.AnnotationTriggers: withAuth}), secret)
	h.reconcile("orders")
	target := inShop("orders")
	h.sample(sources.Sample{Err: errors.New("down")})
	h.sample(sources.Sample{Err: errors.New("down")})
	failures := func() int32 { return h.store.States(target)[0].Failures }
	edits := []struct {
		name string
		edit func()
	}{
		{name: "another annotation", edit: func() {
			h.update("orders", func(d *appsv1.Deployment) { d.Annotations[spec.AnnotationMaxReplicas] = "7" })
		}},
		{name: "a Secret key no parameter reads", edit: func() {
			secret.Data["unrelated"] = []byte("x")
			if err := h.client.Update(context.Background(), secret); err != nil {
				t.Fatal(err)
			}
			h.refreshSecrets()
		}},
	}
	for _, e := range edits {
		e.edit()
		h.reconcile("orders")
		if got := failures(); got != 2 {
			t.Fatalf("after %s: %d failed polls counted, want the 2 before it", e.name, got)
		}
	}
	secret.Data["password"] = []byte("rotated")
	if err := h.client.Update(context.Background(), secret); err != nil {
		t.Fatal(err)
	}
	h.refreshSecrets()
	h.reconcile("orders")
	if got := failures(); got != 0 {
		t.Fatalf("a rotated password makes a new trigger; it kept %d failed polls", got)
	}
}

// A Secret that a secretTargetRef mapping names is read, indexed and refreshed as the one
// that name names: its creation makes the workload valid, a key no mapping reads changes
// nothing, and a rotated mapped key makes a new trigger.
func TestReconcileReadsTheMappedSecrets(t *testing.T) {
	withMapping := "- type: kafka\n  name: orders\n  metadata: {bootstrapServers: 'k:9092', consumerGroup: g, topic: t, sasl: plain}\n" +
		"  authenticationRef:\n    name: creds\n    secretTargetRef: [{parameter: password, name: kafka-secrets, key: sasl-password}]\n"
	creds := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "shop"}, Data: map[string][]byte{"username": []byte("u")}}
	h := newHarness(t, store.KindDeployment, deployment("orders", 1, map[string]string{spec.AnnotationTriggers: withMapping}), creds)
	h.reconcile("orders")
	events := h.events.take()
	wantEvents(t, events, ReasonInvalidScalingConfig)
	if !strings.Contains(events[0].note, `secretTargetRef[0].name: Secret "kafka-secrets" does not exist`) {
		t.Errorf("note %q", events[0].note)
	}
	for _, name := range []string{"creds", "kafka-secrets"} {
		if got := h.r.records.usingSecret("shop", name); len(got) != 1 {
			t.Fatalf("the workload is not indexed under its Secret %q: %v", name, got)
		}
	}
	mapped := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "kafka-secrets", Namespace: "shop"}, Data: map[string][]byte{"sasl-password": []byte("hunter2")}}
	if err := h.client.Create(context.Background(), mapped); err != nil {
		t.Fatal(err)
	}
	h.refreshSecrets()
	h.reconcile("orders")
	if _, ok := h.hpa("qscale-orders"); !ok {
		t.Fatal("no HPA once the mapped Secret exists")
	}
	target := inShop("orders")
	h.sample(sources.Sample{Err: errors.New("down")})
	failures := func() int32 { return h.store.States(target)[0].Failures }
	edit := func(change func(map[string][]byte)) {
		t.Helper()
		change(mapped.Data)
		if err := h.client.Update(context.Background(), mapped); err != nil {
			t.Fatal(err)
		}
		h.refreshSecrets()
		h.reconcile("orders")
	}
	edit(func(d map[string][]byte) { d["password"] = []byte("a key no mapping reads") })
	if got := failures(); got != 1 {
		t.Fatalf("a key no mapping reads made a new trigger: %d failed polls counted, want 1", got)
	}
	edit(func(d map[string][]byte) { d["sasl-password"] = []byte("rotated") })
	if got := failures(); got != 0 {
		t.Fatalf("a rotated mapped key makes a new trigger; it kept %d failed polls", got)
	}
	for _, e := range append(events, h.events.take()...) {
		if strings.Contains(e.note, "hunter2") || strings.Contains(e.note, "rotated") {
			t.Errorf("an Event reveals the Secret: %q", e.note)
		}
	}
}

// refuseBehavior answers the creation or update of an HPA with a scale-up policy of 0 s as
// the API server's validation does: 422, with the field and the reason.
func refuseBehavior(writes *int) interceptor.Funcs {
	check := func(obj client.Object) error {
		h, ok := obj.(*autoscalingv2.HorizontalPodAutoscaler)
		if !ok {
			return nil
		}
		*writes++
		if b := h.Spec.Behavior; b != nil && b.ScaleUp != nil && len(b.ScaleUp.Policies) > 0 && b.ScaleUp.Policies[0].PeriodSeconds == 0 {
			return apierrors.NewInvalid(schema.GroupKind{Group: "autoscaling", Kind: "HorizontalPodAutoscaler"}, h.Name, field.ErrorList{
				field.Invalid(field.NewPath("spec", "behavior", "scaleUp", "policies").Index(0).Child("periodSeconds"), int32(0), "must be greater than zero"),
			})
		}
		return nil
	}
	return interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if err := check(obj); err != nil {
				return err
			}
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if err := check(obj); err != nil {
				return err
			}
			return c.Update(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			if err := check(obj); err != nil {
				return err
			}
			return c.Patch(ctx, obj, patch, opts...)
		},
	}
}

// An HPA the API server refuses is a configuration error told once, naming the annotation
// and the API server's reason; it is not retried until the annotations change, and
// activation goes on without it.
func TestReconcileTellsWhatTheAPIServerRefuses(t *testing.T) {
	writes := 0
	bad := "scaleUp: {policies: [{type: Pods, value: 4, periodSeconds: 0}]}"
	h := newHarnessIntercepted(t, store.KindDeployment, refuseBehavior(&writes), deployment("orders", 0, map[string]string{
		spec.AnnotationTriggers: ordersTrigger, spec.AnnotationMinReplicas: "0", spec.AnnotationHPABehavior: bad,
	}))
	h.reconcile("orders")
	h.sample(sources.Sample{Value: 30, Active: true})
	h.reconcile("orders")
	events := h.events.take()
	wantEvents(t, events, ReasonInvalidScalingConfig, ReasonActivated)
	for _, want := range []string{"qscale.io/hpa-behavior", "spec.behavior.scaleUp.policies[0].periodSeconds", "must be greater than zero"} {
		if !strings.Contains(events[0].note, want) {
			t.Errorf("the Event %q does not say %q", events[0].note, want)
		}
	}
	if got := h.replicas(); got != 1 {
		t.Errorf("replicas = %d: activation must not wait for the HPA", got)
	}
	before := writes
	for range 3 {
		h.sample(sources.Sample{Value: 30, Active: true})
		h.reconcile("orders")
	}
	wantEvents(t, h.events.take())
	if writes != before {
		t.Errorf("the refused HPA was sent %d more times; it should wait for an edit", writes-before)
	}
	h.wantConfigInvalid(map[string]float64{"orders": 1})
	h.update("orders", func(d *appsv1.Deployment) {
		d.Annotations[spec.AnnotationHPABehavior] = "scaleUp: {policies: [{type: Pods, value: 4, periodSeconds: 15}]}"
	})
	h.reconcile("orders")
	if _, ok := h.hpa("qscale-orders"); !ok {
		t.Fatal("no HPA once the behavior is valid")
	}
	wantEvents(t, h.events.take(), ReasonScalingConfigValid)
	h.wantConfigInvalid(map[string]float64{"orders": 0})

	h.update("orders", func(d *appsv1.Deployment) { d.Annotations[spec.AnnotationHPABehavior] = bad })
	h.reconcile("orders")
	wantEvents(t, h.events.take(), ReasonInvalidScalingConfig)
	if hpa, _ := h.hpa("qscale-orders"); hpa.Spec.Behavior.ScaleUp.Policies[0].PeriodSeconds != 15 {
		t.Errorf("the HPA qscale owns changed to a spec the API server refused: %+v", hpa.Spec.Behavior)
	}
}

// A workload whose name is longer than a label value may be still gets its HPA and metric.
func TestReconcileLongNames(t *testing.T) {
	for _, n := range []int{63, 64, 200, 253} {
		name := strings.Repeat("w", n-1) + "1"
		t.Run(fmt.Sprintf("%d characters", n), func(t *testing.T) {
			d := deployment(name, 1, map[string]string{spec.AnnotationTriggers: ordersTrigger})
			h := newHarness(t, store.KindDeployment, d)
			h.reconcile(name)
			hpaName := HPAName(name)
			hpa, ok := h.hpa(hpaName)
			if !ok {
				t.Fatalf("no HPA %s", hpaName)
			}
			if errs := validation.IsDNS1123Subdomain(hpaName); len(errs) > 0 {
				t.Errorf("HPA name %q: %v", hpaName, errs)
			}
			label := hpa.Spec.Metrics[0].External.Metric.Selector.MatchLabels[LabelName]
			if errs := validation.IsValidLabelValue(label); len(errs) > 0 {
				t.Errorf("label value %q: %v", label, errs)
			}
			h.store.Decide(inShop(name), store.Replicas{Spec: 1, Status: 1})
			h.store.Record(inShop(name), h.triggersOf(name)[0], sources.Sample{Value: 7}, h.now)
			h.store.Decide(inShop(name), store.Replicas{Spec: 1, Status: 1})
			if _, _, err := h.store.Value(inShop(label), "qscale-orders"); err != nil {
				t.Errorf("the metric is not served by the label value %q: %v", label, err)
			}
		})
	}
	if NameLabel(strings.Repeat("a", 70)+"x") == NameLabel(strings.Repeat("a", 70)+"y") {
		t.Error("two long names that differ at the end share a label value")
	}
}

func (h *harness) triggersOf(name string) []sources.Trigger {
	_, triggers := h.r.records.current(store.Target{Namespace: "shop", Kind: h.r.Kind, Name: name})
	return triggers
}

// A configuration with many problems is told in one Event the Events API accepts (a note of
// at most 1 kB), which still names every field it can.
func TestReconcileCapsTheEventNote(t *testing.T) {
	var triggers strings.Builder
	for i := range 40 {
		fmt.Fprintf(&triggers, "- type: kafka\n  name: t%d\n  metadata: {bootstrapServers: 'k:9092', consumerGroup: g, topic: t, lagThreshold: '-%d'}\n", i, i)
	}
	h := newHarness(t, store.KindDeployment, deployment("orders", 1, map[string]string{spec.AnnotationTriggers: triggers.String()}))
	h.reconcile("orders")
	events := h.events.take()
	wantEvents(t, events, ReasonInvalidScalingConfig)
	note := events[0].note
	if len(note) > noteLimit {
		t.Fatalf("a note of %d bytes: the Events API refuses more than 1 kB", len(note))
	}
	if !strings.Contains(note, "qscale.io/triggers: [0] (t0).metadata.lagThreshold") {
		t.Errorf("the note lost the field names: %q", note)
	}
}

// A backlog-age trigger's metric counts replicas (target 1), its HPA gets the behavior its
// policy needs unless hpa-behavior says otherwise, and the value served follows the rates
// its polls' counts show.
func TestReconcileBacklogAge(t *testing.T) {
	ageTrigger := "- type: kafka\n  name: orders\n  metadata: {bootstrapServers: 'k:9092', consumerGroup: g, topic: orders, targetBacklogAge: 30s, replicaThroughput: '40'}\n"
	h := newHarness(t, store.KindDeployment, deployment("orders", 10, map[string]string{spec.AnnotationTriggers: ageTrigger}))
	h.reconcile("orders")
	hpa, ok := h.hpa("qscale-orders")
	if !ok {
		t.Fatal("no HPA")
	}
	if got := hpa.Spec.Metrics[0].External.Target.AverageValue.MilliValue(); got != 1000 {
		t.Errorf("AverageValue %dm, want 1000m: the value counts replicas", got)
	}
	if b := hpa.Spec.Behavior; b == nil || *b.ScaleDown.StabilizationWindowSeconds != 0 || b.ScaleUp.Policies[0].Value != 1000 {
		t.Errorf("behavior %+v, want the backlog-age one", b)
	}
	var produced, consumed float64
	for range 6 { // 400 msg/s consumed as they come
		h.sample(sources.Sample{Value: 0, Counters: &sources.Counters{Produced: produced, Consumed: consumed}})
		h.reconcile("orders")
		h.now = h.now.Add(10 * time.Second)
		produced, consumed = produced+4000, consumed+4000
	}
	if v, _, err := h.store.Value(inShop("orders"), "qscale-orders"); err != nil || v < 10000 || v > 12000 {
		t.Errorf("served %d milli, %v; want about 11 replicas' worth (400/40 with headroom)", v, err)
	}
	h.update("orders", func(d *appsv1.Deployment) {
		d.Annotations[spec.AnnotationHPABehavior] = "scaleDown: {stabilizationWindowSeconds: 60}"
	})
	h.reconcile("orders")
	if hpa, _ := h.hpa("qscale-orders"); *hpa.Spec.Behavior.ScaleDown.StabilizationWindowSeconds != 60 || hpa.Spec.Behavior.ScaleUp != nil {
		t.Errorf("hpa-behavior did not win: %+v", hpa.Spec.Behavior)
	}
}
