package scaler

import (
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/qscale/qscale/scaler/spec"
	"github.com/qscale/qscale/scaler/workload"
)

// Lean strips from an object what qscale never reads, before the informer cache stores it;
// it is the cache's transform (controller-runtime's cache.Options.DefaultTransform). The
// cache holds every Deployment and StatefulSet of the cluster, annotated or not, and every
// HPA. Workloads are decoded into the workload package's types, which hold nothing of a
// pod template, a strategy or the rest of a spec and status; what is left of a workload's
// bytes is its metadata: managed fields, labels and a last-applied-configuration annotation
// that repeats the object, none of which qscale reads.
//
// What stays is what the reconciler, the Events it records and the controller-runtime
// machinery around it read:
//
//   - Deployments and StatefulSets: name, namespace, UID and resourceVersion (the Event's
//     reference, the HPA's ownerReference, the scale subresource's address), the qscale.io/
//     annotations (the configuration, and whether qscale.io/triggers is there: its removal
//     must still be seen so that the HPA goes; and qscale.io/status, which qscale compares
//     with the status it computes so as to write it only when it changed) and the replica
//     counts the workload types hold. Every other annotation, the labels, the owner
//     references, the finalizers and the managed fields go. A workload without qscale.io
//     annotations keeps the same fields, which are then its identity and three numbers: one
//     shape for every workload leaves no case where a workload gaining its annotations would
//     be read with fields missing (the cache stores each new version through Lean, from what
//     the API server sent).
//   - HPAs: the managed fields and the status go, and the spec shrinks to scaleTargetRef,
//     all that qscale reads of it (the field index, and the conflict it reports). Whether its
//     own HPA is due an update is told by the digest of the spec it wrote, an annotation, and
//     the update is a patch computed from the HPA qscale wants alone (hpaPatch). The metadata
//     stays: the labels and owner references tell an HPA of qscale's from another's.
//   - Any other object: its managed fields go.
//
// qscale never writes a workload from the cache: it scales through the scale subresource,
// read fresh from the API server, and writes its status as a merge patch of that one
// annotation, so no stripped field can be written back. Lean changes
// the object in place (the informer hands it over before anyone else sees it) and is
// idempotent, as a transform must be.
func Lean(obj any) (any, error) {
	switch o := obj.(type) {
	case *workload.Deployment:
		leanWorkloadMeta(&o.ObjectMeta)
	case *workload.StatefulSet:
		leanWorkloadMeta(&o.ObjectMeta)
	case *autoscalingv2.HorizontalPodAutoscaler:
		o.ManagedFields = nil
		o.Status = autoscalingv2.HorizontalPodAutoscalerStatus{}
		o.Spec = autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: o.Spec.ScaleTargetRef}
	default:
		if m, err := meta.Accessor(obj); err == nil && m.GetManagedFields() != nil {
			m.SetManagedFields(nil)
		}
	}
	return obj, nil
}

// leanWorkloadMeta keeps of a workload's metadata its identity and its qscale.io annotations.
func leanWorkloadMeta(m *metav1.ObjectMeta) {
	*m = metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		Annotations: qscaleAnnotations(m.Annotations),
	}
}

// qscaleAnnotations returns the qscale.io annotations of a workload, nil when it has none.
func qscaleAnnotations(all map[string]string) map[string]string {
	n := 0
	for k := range all {
		if strings.HasPrefix(k, spec.AnnotationPrefix) {
			n++
		}
	}
	switch n {
	case 0:
		return nil
	case len(all):
		return all // already lean
	}
	kept := make(map[string]string, n)
	for k, v := range all {
		if strings.HasPrefix(k, spec.AnnotationPrefix) {
			kept[k] = v
		}
	}
	return kept
}
