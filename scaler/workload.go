package scaler

import (
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/qscale/qscale/scaler/store"
)

// workloadKind adapts one kind of scalable workload.
type workloadKind struct {
	name      string // the qscale.io/kind label value
	apiKind   string // the apps/v1 kind
	newObject func() client.Object
	replicas  func(client.Object) store.Replicas
}

var workloadKinds = map[string]workloadKind{
	store.KindDeployment: {
		name: store.KindDeployment, apiKind: "Deployment",
		newObject: func() client.Object { return &appsv1.Deployment{} },
		replicas: func(o client.Object) store.Replicas {
			d := o.(*appsv1.Deployment)
			return store.Replicas{Spec: specReplicas(d.Spec.Replicas), Status: d.Status.Replicas, Ready: d.Status.ReadyReplicas}
		},
	},
	store.KindStatefulSet: {
		name: store.KindStatefulSet, apiKind: "StatefulSet",
		newObject: func() client.Object { return &appsv1.StatefulSet{} },
		replicas: func(o client.Object) store.Replicas {
			s := o.(*appsv1.StatefulSet)
			return store.Replicas{Spec: specReplicas(s.Spec.Replicas), Status: s.Status.Replicas, Ready: s.Status.ReadyReplicas}
		},
	},
}

// specReplicas applies the API's default of 1 to an unset replica count.
func specReplicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

func ptr[T any](v T) *T { return &v }
