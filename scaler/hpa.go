package scaler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/qscale/qscale/scaler/policy"
	"github.com/qscale/qscale/scaler/spec"
	"github.com/qscale/qscale/scaler/store"
	"github.com/qscale/qscale/sources"
)

// Labels and annotations on the HPAs qscale owns, and in the selectors of its metrics.
const (
	LabelManagedBy      = "app.kubernetes.io/managed-by"
	ManagedByQscale     = "qscale"
	LabelKind           = "qscale.io/kind"
	LabelName           = "qscale.io/name"
	annotationSpecHash  = "qscale.io/spec-hash"
	hpaNamePrefix       = "qscale-"
	externalMetricsType = autoscalingv2.ExternalMetricSourceType
)

// HPAName is the name of the HPA qscale owns for a workload: qscale-<workload>, shortened
// with a digest of the workload's name where that would be longer than an object name may be.
func HPAName(workload string) string {
	return hpaNamePrefix + shorten(workload, validation.DNS1123SubdomainMaxLength-len(hpaNamePrefix))
}

// NameLabel is the value of the qscale.io/name label that selects a workload's metrics: its
// name, shortened with a digest of it where the name is longer than a label value may be.
func NameLabel(workload string) string { return shorten(workload, validation.LabelValueMaxLength) }

// shorten returns s if it has at most limit bytes, else a prefix of s and a digest of the
// whole, limit bytes in all: two names that differ anywhere stay apart. Names are DNS
// subdomains, so the result starts and ends with a letter or digit, as labels must.
func shorten(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	digest := hex.EncodeToString(sum[:])[:10]
	head := strings.TrimRight(s[:limit-len(digest)-1], "-.")
	return head + "-" + digest
}

// desiredHPA is the HPA a workload's spec calls for.
func desiredHPA(k workloadKind, owner client.Object, s *spec.Spec, triggers []sources.Trigger) *autoscalingv2.HorizontalPodAutoscaler {
	metrics := make([]autoscalingv2.MetricSpec, len(triggers))
	for i, tr := range triggers {
		metrics[i] = autoscalingv2.MetricSpec{
			Type: externalMetricsType,
			External: &autoscalingv2.ExternalMetricSource{
				Metric: autoscalingv2.MetricIdentifier{
					Name:     store.MetricName(tr.Name),
					Selector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelKind: k.name, LabelName: NameLabel(owner.GetName())}},
				},
				Target: autoscalingv2.MetricTarget{
					Type:         autoscalingv2.AverageValueMetricType,
					AverageValue: resource.NewMilliQuantity(max(1, policy.Milli(store.MetricTarget(tr))), resource.DecimalSI),
				},
			},
		}
	}
	h := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{
			Name: HPAName(owner.GetName()), Namespace: owner.GetNamespace(),
			Labels: map[string]string{LabelManagedBy: ManagedByQscale},
		},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: k.apiKind, Name: owner.GetName()},
			MinReplicas:    ptr(max(1, s.MinReplicas)),
			MaxReplicas:    s.MaxReplicas,
			Metrics:        metrics,
			Behavior:       behavior(s, triggers),
		},
	}
	// The API server fills in defaults (behavior, for one), so the spec read back never equals
	// the one written; a digest of what qscale wrote tells whether an update is due.
	b, _ := json.Marshal(h.Spec) //nolint:errchkjson // a plain struct of API types always marshals
	sum := sha256.Sum256(b)
	h.Annotations = map[string]string{annotationSpecHash: hex.EncodeToString(sum[:8])}
	return h
}

// errHPAConflict: another HPA scales the workload, or an HPA with qscale's name is not qscale's.
type errHPAConflict struct{ msg string }

func (e *errHPAConflict) Error() string { return e.msg }

// IndexScaleTarget is the field index of HPAs by the workload they scale ("Kind/name"), so a
// reconcile reads the HPAs of one workload instead of every HPA of its namespace.
const IndexScaleTarget = "qscale.io/scale-target"

// scaleTargetKey is the IndexScaleTarget value of an HPA, or of a workload of kind apiKind.
func scaleTargetKey(apiKind, name string) string { return apiKind + "/" + name }

// IndexHPAByScaleTarget extracts IndexScaleTarget from an HPA.
func IndexHPAByScaleTarget(o client.Object) []string {
	h, ok := o.(*autoscalingv2.HorizontalPodAutoscaler)
	if !ok {
		return nil
	}
	return []string{scaleTargetKey(h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name)}
}

// ensureHPA creates or updates the workload's HPA. It never touches an HPA qscale does not own.
func (r *Reconciler) ensureHPA(ctx context.Context, owner client.Object, want *autoscalingv2.HorizontalPodAutoscaler) error {
	var targeting autoscalingv2.HorizontalPodAutoscalerList
	if err := r.Client.List(ctx, &targeting, client.InNamespace(owner.GetNamespace()),
		client.MatchingFields{IndexScaleTarget: scaleTargetKey(want.Spec.ScaleTargetRef.Kind, owner.GetName())}); err != nil {
		return err
	}
	var have *autoscalingv2.HorizontalPodAutoscaler
	for i := range targeting.Items {
		h := &targeting.Items[i]
		if h.Name != want.Name || !ownedBy(h, owner) {
			return &errHPAConflict{fmt.Sprintf("HPA %s already scales this workload: qscale leaves it alone and creates none", h.Name)}
		}
		have = h
	}
	if have == nil { // an HPA may carry qscale's name and scale something else
		var named autoscalingv2.HorizontalPodAutoscaler
		err := r.Client.Get(ctx, client.ObjectKey{Namespace: owner.GetNamespace(), Name: want.Name}, &named)
		switch {
		case err == nil:
			return &errHPAConflict{fmt.Sprintf("HPA %s exists and is not owned by qscale: qscale leaves it alone and creates none", named.Name)}
		case !apierrors.IsNotFound(err):
			return err
		}
	}
	if err := controllerutil.SetControllerReference(owner, want, r.Client.Scheme()); err != nil {
		return err
	}
	if have == nil {
		return r.Client.Create(ctx, want)
	}
	if have.Annotations[annotationSpecHash] == want.Annotations[annotationSpecHash] {
		return nil
	}
	patch, err := hpaPatch(want)
	if err != nil {
		return err
	}
	// want names the HPA patched (have's name and namespace) and receives what it became.
	return r.Client.Patch(ctx, want, client.RawPatch(types.JSONPatchType, patch))
}

// hpaPatch is the JSON patch that makes an HPA's labels, annotations, owner references and
// spec want's, whole: a field of the HPA that want lacks goes (a behavior whose annotation
// was removed, a label someone added). A patch, not an update: the HPA is qscale's alone,
// and an update from a cache that lags (just after the API server came back, say) would fail
// on its resource version and wait out the back-off. It is computed from want alone, so the
// cache need not hold the HPA's spec (Lean drops it).
func hpaPatch(want *autoscalingv2.HorizontalPodAutoscaler) ([]byte, error) {
	type op struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value any    `json:"value"`
	}
	// "add" sets a member whether or not it is there; "replace" would fail where it is not.
	return json.Marshal([]op{
		{Op: "add", Path: "/metadata/labels", Value: want.Labels},
		{Op: "add", Path: "/metadata/annotations", Value: want.Annotations},
		{Op: "add", Path: "/metadata/ownerReferences", Value: want.OwnerReferences},
		{Op: "add", Path: "/spec", Value: want.Spec},
	})
}

// deleteHPA deletes the workload's HPA if qscale owns it.
func (r *Reconciler) deleteHPA(ctx context.Context, owner client.Object) error {
	var h autoscalingv2.HorizontalPodAutoscaler
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: owner.GetNamespace(), Name: HPAName(owner.GetName())}, &h)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !ownedBy(&h, owner) {
		return nil
	}
	return client.IgnoreNotFound(r.Client.Delete(ctx, &h))
}

// ownedBy reports whether h is qscale's HPA for owner.
func ownedBy(h *autoscalingv2.HorizontalPodAutoscaler, owner client.Object) bool {
	if h.Labels[LabelManagedBy] != ManagedByQscale {
		return false
	}
	ref := metav1.GetControllerOf(h)
	return ref != nil && ref.UID == owner.GetUID()
}

// writeHPA creates or updates the workload's HPA. An HPA that the API server refuses as
// invalid (an hpa-behavior that parses but breaks the API's rules, say) is a configuration
// error: it is told once with an InvalidScalingConfig Event naming the annotation and the
// API server's reason, the HPA qscale already owns is left as it is, and the same spec is not
// sent again until the annotations change. It is not retried as an error: only an edit can
// fix it, and the rest of the workload's scaling (activation among it) goes on.
func (r *Reconciler) writeHPA(ctx context.Context, t store.Target, owner client.Object, want *autoscalingv2.HorizontalPodAutoscaler) error {
	hash := want.Annotations[annotationSpecHash]
	if r.records.rejectedHPA(t) == hash {
		return nil
	}
	err := r.ensureHPA(ctx, owner, want)
	switch {
	case apierrors.IsInvalid(err):
		msg := rejection(err)
		if r.records.rejectHPA(t, hash, msg) {
			r.event(owner, store.Event{Warning: true, Reason: ReasonInvalidScalingConfig, Message: msg})
		}
		return nil
	case err == nil && r.records.acceptHPA(t):
		r.event(owner, store.Event{Reason: ReasonScalingConfigValid, Message: "the API server accepts the HPA again"})
	}
	return err
}

// rejection explains the API server's refusal of an HPA, naming the annotation each refused
// field comes from.
func rejection(err error) string {
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil || len(status.Status().Details.Causes) == 0 {
		return summary(&spec.Error{Problems: []spec.Problem{{Annotation: spec.AnnotationTriggers, Message: "the API server refused the HPA: " + err.Error()}}})
	}
	var problems []spec.Problem
	for _, c := range status.Status().Details.Causes {
		problems = append(problems, spec.Problem{Annotation: annotationOf(c.Field), Field: c.Field,
			Message: "the API server refused the HPA: " + c.Message})
	}
	spec.SortProblems(problems)
	return summary(&spec.Error{Problems: problems})
}

// annotationOf returns the annotation that an HPA field comes from.
func annotationOf(field string) string {
	for _, f := range []struct{ prefix, annotation string }{
		{"spec.behavior", spec.AnnotationHPABehavior},
		{"spec.minReplicas", spec.AnnotationMinReplicas},
		{"spec.maxReplicas", spec.AnnotationMaxReplicas},
	} {
		if strings.HasPrefix(field, f.prefix) {
			return f.annotation
		}
	}
	return spec.AnnotationTriggers
}

// behavior is the HPA's behavior: qscale.io/hpa-behavior when set; else, for a workload with
// a backlog-age trigger, the one its policy needs; else none (the HPA's defaults).
//
// A backlog-age trigger's value is already the replica count its policy wants, with the
// start-up delay and the arrival rate's fall accounted for. The HPA's defaults would stand in
// its way: up by at most 4 pods or 100 % per 15 s (a burst from 2 replicas to 30 would take a
// minute), down only after 300 s (the policy holds what the arrival rate needs itself, and a
// 300 s window costs about 0.4 times the fluid bound in idle replicas).
func behavior(s *spec.Spec, triggers []sources.Trigger) *autoscalingv2.HorizontalPodAutoscalerBehavior {
	if s.Behavior != nil {
		return s.Behavior
	}
	for _, tr := range triggers {
		if _, ok := sources.BacklogAgeOf(tr.Config); ok {
			return AgeBehavior()
		}
	}
	return nil
}

// AgeBehavior is the HPA behavior of a workload with a backlog-age trigger: up to the target at once (1,000 % or 100 pods per 15 s, whichever is more),
// down at once (no stabilization window; 100 % per 15 s).
func AgeBehavior() *autoscalingv2.HorizontalPodAutoscalerBehavior {
	maxPolicy := autoscalingv2.MaxChangePolicySelect
	return &autoscalingv2.HorizontalPodAutoscalerBehavior{
		ScaleUp: &autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: ptr[int32](0),
			SelectPolicy:               &maxPolicy,
			Policies: []autoscalingv2.HPAScalingPolicy{
				{Type: autoscalingv2.PercentScalingPolicy, Value: 1000, PeriodSeconds: 15},
				{Type: autoscalingv2.PodsScalingPolicy, Value: 100, PeriodSeconds: 15},
			},
		},
		ScaleDown: &autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: ptr[int32](0),
			SelectPolicy:               &maxPolicy,
			Policies:                   []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15}},
		},
	}
}
