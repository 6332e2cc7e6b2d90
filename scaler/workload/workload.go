// Package workload holds Deployments and StatefulSets as qscale reads them: their metadata
// and three replica counts, nothing of their pod templates.
//
// Deployment and StatefulSet are registered by NewScheme under the apps/v1 kinds they stand
// for, in place of client-go's types, so that what the API server sends (protobuf, or JSON)
// is decoded straight into them. qscale's informer cache holds every workload of the
// cluster, annotated or not, and a client-go Deployment is more than a kilobyte even with its
// pod template cleared: the struct is allocated whole for what a workload's spec and status
// may hold. These are a quarter of that, and decoding them allocates nothing for the fields
// they leave out. They are read and patched, never written whole: a merge patch of one of
// them names only the fields it changed, the scale subresource is read and written as an
// autoscaling/v1 Scale, and they have no protobuf encoding.
package workload

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Workload is what qscale reads of a Deployment or a StatefulSet.
type Workload struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   Spec   `json:"spec"`
	Status Status `json:"status"`
}

// Spec is the part of a workload's spec that qscale reads.
type Spec struct {
	// Replicas is the desired count; nil stands for the API's default of 1.
	Replicas *int32 `json:"replicas,omitempty"`
}

// Status is the part of a workload's status that qscale reads.
type Status struct {
	Replicas      int32 `json:"replicas,omitempty"`
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
}

// Replicas are a workload's replica counts: desired (the API's default of 1 when unset),
// existing and ready.
func (w *Workload) Replicas() (desired, existing, ready int32) {
	desired = 1
	if w.Spec.Replicas != nil {
		desired = *w.Spec.Replicas
	}
	return desired, w.Status.Replicas, w.Status.ReadyReplicas
}

// DeepCopyInto copies w into out, sharing nothing.
func (w *Workload) DeepCopyInto(out *Workload) {
	*out = *w
	w.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	if w.Spec.Replicas != nil {
		r := *w.Spec.Replicas
		out.Spec.Replicas = &r
	}
}

// Deployment is an apps/v1 Deployment as qscale reads it.
type Deployment struct {
	Workload `json:",inline"`
}

// DeploymentList is a list of Deployments.
type DeploymentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Deployment `json:"items"`
}

// StatefulSet is an apps/v1 StatefulSet as qscale reads it.
type StatefulSet struct {
	Workload `json:",inline"`
}

// StatefulSetList is a list of StatefulSets.
type StatefulSetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []StatefulSet `json:"items"`
}

// DeepCopyObject implements runtime.Object.
func (d *Deployment) DeepCopyObject() runtime.Object {
	out := &Deployment{}
	d.DeepCopyInto(&out.Workload)
	return out
}

// DeepCopyObject implements runtime.Object.
func (s *StatefulSet) DeepCopyObject() runtime.Object {
	out := &StatefulSet{}
	s.DeepCopyInto(&out.Workload)
	return out
}

// DeepCopyInto copies l into out, sharing nothing.
func (l *DeploymentList) DeepCopyInto(out *DeploymentList) {
	out.TypeMeta = l.TypeMeta
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	out.Items = copyItems(l.Items, func(d *Deployment) *Workload { return &d.Workload })
}

// DeepCopyObject implements runtime.Object.
func (l *DeploymentList) DeepCopyObject() runtime.Object {
	out := &DeploymentList{}
	l.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies l into out, sharing nothing.
func (l *StatefulSetList) DeepCopyInto(out *StatefulSetList) {
	out.TypeMeta = l.TypeMeta
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	out.Items = copyItems(l.Items, func(d *StatefulSet) *Workload { return &d.Workload })
}

// DeepCopyObject implements runtime.Object.
func (l *StatefulSetList) DeepCopyObject() runtime.Object {
	out := &StatefulSetList{}
	l.DeepCopyInto(out)
	return out
}

// copyItems copies a list's items, sharing nothing; workload is an item's Workload.
func copyItems[T any](items []T, workload func(*T) *Workload) []T {
	if items == nil {
		return nil
	}
	out := make([]T, len(items))
	for i := range items {
		workload(&items[i]).DeepCopyInto(workload(&out[i]))
	}
	return out
}
