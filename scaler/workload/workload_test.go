package workload

import (
	"encoding/json"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
)

func ptr[T any](v T) *T { return &v }

// served is a workload's metadata, spec and status as the API server sends them.
func served(name string) (metav1.ObjectMeta, corev1.PodTemplateSpec) {
	meta := metav1.ObjectMeta{Name: name, Namespace: "shop", UID: "uid-" + "name", ResourceVersion: "9",
		Labels: map[string]string{"app": name}, Annotations: map[string]string{"qscale.io/triggers": "- type: kafka\n"}}
	template := corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
		{Name: "app", Image: "shop/app:1", Env: []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "info"}}},
	}}}
	return meta, template
}

func TestSchemeDecodesWorkloads(t *testing.T) {
	scheme, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	decoder := serializer.NewCodecFactory(scheme).UniversalDeserializer()
	dMeta, template := served("orders")
	sMeta, _ := served("ledger")
	tests := []struct {
		name string
		sent runtime.Object
		want runtime.Object
	}{
		{
			name: "a Deployment keeps its metadata and replica counts",
			sent: &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: dMeta,
				Spec:   appsv1.DeploymentSpec{Replicas: ptr[int32](3), Template: template, Selector: &metav1.LabelSelector{MatchLabels: dMeta.Labels}},
				Status: appsv1.DeploymentStatus{Replicas: 3, ReadyReplicas: 2, AvailableReplicas: 2, ObservedGeneration: 4}},
			want: &Deployment{Workload{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: dMeta,
				Spec: Spec{Replicas: ptr[int32](3)}, Status: Status{Replicas: 3, ReadyReplicas: 2}}},
		},
		{
			name: "a StatefulSet without replicas set keeps none",
			sent: &appsv1.StatefulSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"}, ObjectMeta: sMeta,
				Spec:   appsv1.StatefulSetSpec{ServiceName: "ledger", Template: template},
				Status: appsv1.StatefulSetStatus{Replicas: 1, ReadyReplicas: 1, CurrentRevision: "ledger-1"}},
			want: &StatefulSet{Workload{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"}, ObjectMeta: sMeta,
				Status: Status{Replicas: 1, ReadyReplicas: 1}}},
		},
		{
			name: "a list of Deployments",
			sent: &appsv1.DeploymentList{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DeploymentList"}, ListMeta: metav1.ListMeta{ResourceVersion: "10"},
				Items: []appsv1.Deployment{{ObjectMeta: dMeta, Spec: appsv1.DeploymentSpec{Template: template}, Status: appsv1.DeploymentStatus{Replicas: 1}}}},
			want: &DeploymentList{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DeploymentList"}, ListMeta: metav1.ListMeta{ResourceVersion: "10"},
				Items: []Deployment{{Workload{ObjectMeta: dMeta, Status: Status{Replicas: 1}}}}},
		},
		{
			name: "HPAs stay client-go's",
			sent: &autoscalingv2.HorizontalPodAutoscaler{TypeMeta: metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"}, ObjectMeta: dMeta,
				Spec: autoscalingv2.HorizontalPodAutoscalerSpec{MaxReplicas: 5}},
			want: &autoscalingv2.HorizontalPodAutoscaler{TypeMeta: metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"}, ObjectMeta: dMeta,
				Spec: autoscalingv2.HorizontalPodAutoscalerSpec{MaxReplicas: 5}},
		},
	}
	pb := protobuf.NewSerializer(clientgoscheme.Scheme, clientgoscheme.Scheme)
	encodings := []struct {
		name   string
		encode func(runtime.Object) ([]byte, error)
	}{
		{name: "JSON", encode: func(o runtime.Object) ([]byte, error) { return json.Marshal(o) }},
		{name: "protobuf", encode: func(o runtime.Object) ([]byte, error) { return runtime.Encode(pb, o) }},
	}
	for _, tt := range tests {
		for _, enc := range encodings {
			t.Run(tt.name+"/"+enc.name, func(t *testing.T) {
				b, err := enc.encode(tt.sent)
				if err != nil {
					t.Fatal(err)
				}
				got, err := runtime.Decode(decoder, b)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("decoded\n%#v\nwant\n%#v", got, tt.want)
				}
			})
		}
	}
}

// A workload is never written whole: neither encoding the API server takes can encode one
// by mistake as its metadata alone.
func TestWorkloadsHaveNoProtobufEncoding(t *testing.T) {
	scheme, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	pb := protobuf.NewSerializer(scheme, scheme)
	for _, obj := range []runtime.Object{&Deployment{}, &StatefulSet{}, &DeploymentList{}, &StatefulSetList{}} {
		if b, err := runtime.Encode(pb, obj); err == nil {
			t.Errorf("%T encoded to protobuf as %q", obj, b)
		}
	}
}

// Malformed protobuf is an error, not a panic or a half-read workload passed on.
func TestUnmarshalRefusesMalformedProtobuf(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
	}{
		{name: "a truncated tag", b: []byte{0x80}},
		{name: "a length past the end", b: []byte{0x0a, 0x05, 0x01}},
		{name: "a truncated varint in the status", b: []byte{0x1a, 0x02, 0x10, 0x80}},
		{name: "bad metadata", b: []byte{0x0a, 0x02, 0x0a, 0x05}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asItem := protowire.AppendBytes(protowire.AppendTag(nil, fieldItems, protowire.BytesType), tt.b) // a list holding it
			for _, c := range []struct {
				obj interface{ Unmarshal([]byte) error }
				b   []byte
			}{{&Deployment{}, tt.b}, {&StatefulSet{}, tt.b}, {&DeploymentList{}, asItem}, {&StatefulSetList{}, asItem}} {
				if err := c.obj.Unmarshal(c.b); err == nil {
					t.Errorf("%T decoded % x", c.obj, c.b)
				}
			}
		})
	}
}

// The scheme has one Go type for each workload kind, this package's: a client-go Deployment
// would be the whole object, and a second type for a kind leaves which one an object is ambiguous.
func TestSchemeNamesWorkloadsByTheirKinds(t *testing.T) {
	scheme, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		obj  runtime.Object
		kind string
	}{
		{name: "Deployment", obj: &Deployment{}, kind: "Deployment"},
		{name: "StatefulSet", obj: &StatefulSet{}, kind: "StatefulSet"},
		{name: "DeploymentList", obj: &DeploymentList{}, kind: "DeploymentList"},
		{name: "StatefulSetList", obj: &StatefulSetList{}, kind: "StatefulSetList"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			gvks, _, err := scheme.ObjectKinds(tt.obj)
			if err != nil || len(gvks) != 1 || gvks[0] != appsv1.SchemeGroupVersion.WithKind(tt.kind) {
				t.Fatalf("kinds %v, %v; want apps/v1 %s alone", gvks, err, tt.kind)
			}
		})
	}
	if _, _, err := scheme.ObjectKinds(&appsv1.Deployment{}); err == nil {
		t.Fatal("client-go's Deployment is registered too")
	}
}

func TestDeepCopySharesNothing(t *testing.T) {
	w := func() Workload {
		meta, _ := served("orders")
		return Workload{ObjectMeta: meta, Spec: Spec{Replicas: ptr[int32](2)}, Status: Status{Replicas: 2}}
	}
	change := func(w *Workload) {
		w.Annotations["qscale.io/triggers"] = "changed"
		*w.Spec.Replicas = 5
	}
	tests := []struct {
		name   string
		orig   func() runtime.Object
		change func(runtime.Object)
	}{
		{name: "Deployment", orig: func() runtime.Object { return &Deployment{w()} },
			change: func(o runtime.Object) { change(&o.(*Deployment).Workload) }},
		{name: "StatefulSet", orig: func() runtime.Object { return &StatefulSet{w()} },
			change: func(o runtime.Object) { change(&o.(*StatefulSet).Workload) }},
		{name: "DeploymentList", orig: func() runtime.Object { return &DeploymentList{Items: []Deployment{{w()}}} },
			change: func(o runtime.Object) { change(&o.(*DeploymentList).Items[0].Workload) }},
		{name: "StatefulSetList", orig: func() runtime.Object { return &StatefulSetList{Items: []StatefulSet{{w()}}} },
			change: func(o runtime.Object) { change(&o.(*StatefulSetList).Items[0].Workload) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := tt.orig()
			cp := orig.DeepCopyObject()
			if !reflect.DeepEqual(cp, orig) {
				t.Fatalf("the copy\n%+v\ndiffers from\n%+v", cp, orig)
			}
			tt.change(cp)
			if !reflect.DeepEqual(orig, tt.orig()) {
				t.Fatalf("a change to the copy reached the original: %+v", orig)
			}
		})
	}
}

func TestReplicas(t *testing.T) {
	tests := []struct {
		name                     string
		w                        Workload
		desired, existing, ready int32
	}{
		{name: "unset replicas are the API's default of 1", w: Workload{Status: Status{Replicas: 1}}, desired: 1, existing: 1},
		{name: "scaled to zero", w: Workload{Spec: Spec{Replicas: ptr[int32](0)}}, desired: 0},
		{name: "rolling out", w: Workload{Spec: Spec{Replicas: ptr[int32](4)}, Status: Status{Replicas: 5, ReadyReplicas: 3}}, desired: 4, existing: 5, ready: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, e, r := tt.w.Replicas()
			if d != tt.desired || e != tt.existing || r != tt.ready {
				t.Fatalf("Replicas() = %d, %d, %d; want %d, %d, %d", d, e, r, tt.desired, tt.existing, tt.ready)
			}
		})
	}
}
