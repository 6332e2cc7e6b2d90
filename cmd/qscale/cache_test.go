package main

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/qscale/qscale/scaler/workload"
)

// The manager's cache, built with the scheme and options qscale run gives it, holds
// workloads as the workload package's types decode them and scaler.Lean leaves them. The
// informer is the one controller-runtime builds, fed the JSON an API server would send.
func TestCacheHoldsLeanWorkloads(t *testing.T) {
	full := appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name: "orders", Namespace: "shop", UID: "uid-orders", ResourceVersion: "7",
			Labels: map[string]string{"app": "orders"},
			Annotations: map[string]string{
				"qscale.io/triggers": "- type: kafka\n", "kubectl.kubernetes.io/last-applied-configuration": `{"kind":"Deployment"}`,
			},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationUpdate}},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "orders"}},
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "app", Image: "shop/app:1", Env: []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "info"}}},
				{Name: "log-shipper", Image: "fluent/fluent-bit:3.1"},
			}}},
		},
		Status: appsv1.DeploymentStatus{Replicas: 2, ReadyReplicas: 1, UpdatedReplicas: 2, ObservedGeneration: 3},
	}
	want := workload.Deployment{Workload: workload.Workload{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: "shop", UID: "uid-orders", ResourceVersion: "7",
			Annotations: map[string]string{"qscale.io/triggers": "- type: kafka\n"}},
		Spec:   workload.Spec{Replicas: ptr[int32](2)},
		Status: workload.Status{Replicas: 2, ReadyReplicas: 1},
	}}
	for _, tt := range []struct{ name, namespace string }{
		{name: "every namespace", namespace: ""},
		{name: "--namespace", namespace: "shop"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			list := &appsv1.DeploymentList{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DeploymentList"},
				ListMeta: metav1.ListMeta{ResourceVersion: "7"}, Items: []appsv1.Deployment{full}}
			c := startedCache(ctx, t, cacheOptions(tt.namespace), list)
			var got workload.Deployment
			if err := c.Get(ctx, types.NamespacedName{Namespace: "shop", Name: "orders"}, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("the cache holds\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

// startedCache starts a cache built with opts and qscale's scheme whose Deployment
// informer lists list, a DeploymentList sent as JSON, and then sees no change.
func startedCache(ctx context.Context, t *testing.T, opts cache.Options, list *appsv1.DeploymentList) cache.Cache {
	t.Helper()
	scheme, err := workload.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	sent, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	decoder := serializer.NewCodecFactory(scheme).UniversalDeserializer()
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(appsv1.SchemeGroupVersion.WithKind("Deployment"), meta.RESTScopeNamespace)
	opts.Mapper, opts.Scheme = mapper, scheme
	opts.NewInformer = func(_ toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, indexers toolscache.Indexers) toolscache.SharedIndexInformer {
		lw := &toolscache.ListWatch{
			ListWithContextFunc: func(context.Context, metav1.ListOptions) (runtime.Object, error) {
				return runtime.Decode(decoder, sent)
			},
			WatchFuncWithContext: func(context.Context, metav1.ListOptions) (watch.Interface, error) { return watch.NewFake(), nil },
		}
		return toolscache.NewSharedIndexInformer(listOnly{lw}, obj, resync, indexers)
	}
	c, err := cache.New(&rest.Config{Host: "http://127.0.0.1:1"}, opts) // never dialled
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		t.Fatal("the cache never synced")
	}
	return c
}

// listOnly is a ListerWatcher whose initial state comes from a list, not from a watch stream.
type listOnly struct{ *toolscache.ListWatch }

func (listOnly) IsWatchListSemanticsUnSupported() bool { return true }

func ptr[T any](v T) *T { return &v }
