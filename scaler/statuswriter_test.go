package scaler

import (
	"context"
	"testing"
	"time"

	"golang.org/x/time/rate"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/qscale/qscale/scaler/status"
)

func newWriterClient(t *testing.T, writes *int, names ...string) client.Client {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	var objs []client.Object
	for _, n := range names {
		objs = append(objs, deployment(n, 1, nil))
	}
	return qscaleView(t, fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithInterceptorFuncs(statusWrites(t, writes)).Build())
}

func statusAnnotation(t *testing.T, c client.Client, name string) string {
	t.Helper()
	var d appsv1.Deployment
	if err := c.Get(context.Background(), types.NamespacedName{Namespace: "shop", Name: name}, &d); err != nil {
		t.Fatal(err)
	}
	return d.Annotations[status.Annotation]
}

func TestStatusWriter(t *testing.T) {
	leader := true
	tests := []struct {
		name       string
		run        func(w *statusWriter)
		leader     bool
		wantWrites int
		want       string
	}{
		{name: "a status that changes again before it is written is written once", leader: true,
			run: func(w *statusWriter) {
				w.want(inShop("orders"), "a", "1")
				w.want(inShop("orders"), "b", "1")
			}, wantWrites: 1, want: "b"},
		{name: "a dropped status is not written", leader: true,
			run: func(w *statusWriter) {
				w.want(inShop("orders"), "a", "1")
				w.drop(inShop("orders"))
			}},
		{name: "a replica that does not lead writes nothing",
			run: func(w *statusWriter) { w.want(inShop("orders"), "a", "1") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			writes := 0
			c := newWriterClient(t, &writes, "orders")
			recs := newRecords()
			recs.setFingerprint(inShop("orders"), "configured") // a workload the reconciler knows
			leader = tt.leader
			w := newStatusWriter(c, recs, nil, func() bool { return leader })
			tt.run(w)
			w.flush(context.Background())
			if got := statusAnnotation(t, c, "orders"); writes != tt.wantWrites || got != tt.want {
				t.Fatalf("%d writes leaving %q, want %d leaving %q", writes, got, tt.wantWrites, tt.want)
			}
			if last := recs.lastStatus(inShop("orders")); last.value != tt.want {
				t.Errorf("recorded %+v, want the value %q", last, tt.want)
			}
		})
	}
}

// A workload forgotten while its status was being written is not recorded again.
func TestStatusWriterForgets(t *testing.T) {
	writes := 0
	c := newWriterClient(t, &writes, "orders")
	recs := newRecords()
	w := newStatusWriter(c, recs, nil, nil)
	w.want(inShop("orders"), `{"ready":true}`, "1")
	w.flush(context.Background())
	if _, known := recs.m[inShop("orders")]; known || writes != 1 {
		t.Errorf("%d writes; the records hold the forgotten workload: %t", writes, known)
	}
}

// The writer paces itself: it writes what it is given in turn, at its limiter's rate.
func TestStatusWriterPaces(t *testing.T) {
	writes := 0
	names := []string{"a", "b", "c", "d"}
	c := newWriterClient(t, &writes, names...)
	w := newStatusWriter(c, newRecords(), rate.NewLimiter(rate.Every(50*time.Millisecond), 1), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Start(ctx); close(done) }()
	start := time.Now()
	for _, n := range names {
		w.want(inShop(n), `{"ready":true}`, "1")
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range names {
		for statusAnnotation(t, c, n) == "" {
			if time.Now().After(deadline) {
				t.Fatalf("%s not written", n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if took := time.Since(start); took < 140*time.Millisecond {
		t.Errorf("4 writes at 20/s took %s: the limiter was not waited on", took)
	}
	cancel()
	<-done
}
