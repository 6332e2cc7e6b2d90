package workload

import (
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// AddToScheme registers Deployment, StatefulSet and their lists as the apps/v1 kinds they
// stand for. s must not hold client-go's apps/v1 types: a kind names one Go type.
func AddToScheme(s *runtime.Scheme) error {
	gv := appsv1.SchemeGroupVersion
	s.AddKnownTypeWithName(gv.WithKind("Deployment"), &Deployment{})
	s.AddKnownTypeWithName(gv.WithKind("DeploymentList"), &DeploymentList{})
	s.AddKnownTypeWithName(gv.WithKind("StatefulSet"), &StatefulSet{})
	s.AddKnownTypeWithName(gv.WithKind("StatefulSetList"), &StatefulSetList{})
	metav1.AddToGroupVersion(s, gv) // list and watch options, status and watch events
	return nil
}

// NewScheme returns the scheme of qscale's clients and informer cache: the workloads of this
// package, and client-go's types of the other groups that qscale reads or writes (HPAs, the
// scale subresource, Secrets, Events, Leases).
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		AddToScheme, corev1.AddToScheme, autoscalingv1.AddToScheme, autoscalingv2.AddToScheme,
		coordinationv1.AddToScheme, eventsv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}
