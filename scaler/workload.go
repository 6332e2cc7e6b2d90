package scaler

import (
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/qscale/qscale/scaler/store"
	"github.com/qscale/qscale/scaler/workload"
)

// workloadKind adapts one kind of scalable workload.
type workloadKind struct {
	name      string // the qscale.io/kind label value
	apiKind   string // the apps/v1 kind
	newObject func() workloadObject
}

// workloadObject is a workload as qscale's cache holds it: a workload.Deployment or
// workload.StatefulSet.
type workloadObject interface {
	client.Object
	Replicas() (desired, existing, ready int32)
}

var workloadKinds = map[string]workloadKind{
	store.KindDeployment: {
		name: store.KindDeployment, apiKind: "Deployment",
		newObject: func() workloadObject { return &workload.Deployment{} },
	},
	store.KindStatefulSet: {
		name: store.KindStatefulSet, apiKind: "StatefulSet",
		newObject: func() workloadObject { return &workload.StatefulSet{} },
	},
}

// replicas are the replica counts of w, as the decision reads them.
func replicas(w workloadObject) store.Replicas {
	desired, existing, ready := w.Replicas()
	return store.Replicas{Spec: desired, Status: existing, Ready: ready}
}

func ptr[T any](v T) *T { return &v }
