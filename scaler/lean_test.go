package scaler

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/qscale/qscale/scaler/spec"
	"github.com/qscale/qscale/scaler/store"
	"github.com/qscale/qscale/scaler/workload"
)

// fullMeta is the metadata of a workload as the API server sends it: labels, foreign
// annotations, a kubectl last-applied-configuration, managed fields and the rest.
func fullMeta(name string, annotations map[string]string) metav1.ObjectMeta {
	all := map[string]string{
		"kubectl.kubernetes.io/last-applied-configuration": `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"` + name + `"},"spec":{"template":{"spec":{"containers":[{"name":"app","image":"shop/app:1.4.2"}]}}}}`,
		"deployment.kubernetes.io/revision":                "7",
		"meta.helm.sh/release-name":                        "shop",
	}
	for k, v := range annotations {
		all[k] = v
	}
	return metav1.ObjectMeta{
		Name: name, Namespace: "shop", UID: types.UID("uid-" + name), ResourceVersion: "4711", Generation: 7,
		CreationTimestamp: metav1.Unix(1_700_000_000, 0),
		Labels:            map[string]string{"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "shop", "team": "orders"},
		Annotations:       all,
		OwnerReferences:   []metav1.OwnerReference{{APIVersion: "example.com/v1", Kind: "App", Name: "shop", UID: "uid-shop"}},
		Finalizers:        []string{"example.com/cleanup"},
		ManagedFields: []metav1.ManagedFieldsEntry{
			{Manager: "kubectl-client-side-apply", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "apps/v1",
				FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:annotations":{}},"f:spec":{"f:template":{}}}`)},
			{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "apps/v1", Subresource: "status",
				FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:status":{"f:replicas":{},"f:readyReplicas":{}}}`)},
		},
	}
}

// podTemplate is a pod template of the kind clusters are full of: three containers and an
// init container, env from literals, ConfigMaps, Secrets and the downward API, probes,
// resources and volumes of four kinds.
func podTemplate(name string) corev1.PodTemplateSpec {
	env := []corev1.EnvVar{
		{Name: "LOG_LEVEL", Value: "info"},
		{Name: "KAFKA_BROKERS", Value: "kafka-0.kafka:9092,kafka-1.kafka:9092,kafka-2.kafka:9092"},
		{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}},
		{Name: "FEATURES", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "features"}, Key: "flags"}}},
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
	}
	resources := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
	}
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}}, PeriodSeconds: 10}
	mounts := []corev1.VolumeMount{{Name: "config", MountPath: "/etc/app"}, {Name: "tls", MountPath: "/etc/tls", ReadOnly: true}, {Name: "scratch", MountPath: "/tmp"}}
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app.kubernetes.io/name": name}, Annotations: map[string]string{"prometheus.io/scrape": "true"}},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "migrate", Image: "shop/migrate:1.4.2", Env: env, VolumeMounts: mounts[:1]}},
			Containers: []corev1.Container{
				{Name: "app", Image: "shop/app:1.4.2", Env: env, Resources: resources, LivenessProbe: probe, ReadinessProbe: probe,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}, VolumeMounts: mounts},
				{Name: "log-shipper", Image: "fluent/fluent-bit:3.1", Args: []string{"-c", "/etc/app/fluent-bit.conf"}, VolumeMounts: mounts[:1]},
				{Name: "exporter", Image: "shop/exporter:0.9", Env: env[:2], Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9100}}},
			},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: name}}}},
				{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: name + "-tls"}}},
				{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: "vault", Path: "token"}}}}}},
			},
			ServiceAccountName: name,
			Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{
				{Weight: 100, PodAffinityTerm: corev1.PodAffinityTerm{TopologyKey: "kubernetes.io/hostname", LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": name}}}}}}},
		},
	}
}

func fullDeployment(name string, annotations map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: fullMeta(name, annotations),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": name}},
			Template: podTemplate(name),
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType},
		},
		Status: appsv1.DeploymentStatus{
			ObservedGeneration: 7, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 2, AvailableReplicas: 2, UnavailableReplicas: 1,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable", Message: "Deployment has minimum availability."}},
		},
	}
}

// decoded is full as the API server's JSON of it decodes into T, a workload type.
func decoded[T any, PT interface {
	*T
	client.Object
}](t *testing.T, full client.Object) PT {
	t.Helper()
	var obj PT = new(T)
	if err := decodeInto(full, obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

// leanWorkload is what Lean keeps of a workload with fullMeta, and its replica counts.
func leanWorkload(kind, name string, annotations map[string]string, desired, existing, ready int32) workload.Workload {
	return workload.Workload{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: kind},
		ObjectMeta: leanMeta(name, annotations),
		Spec:       workload.Spec{Replicas: &desired},
		Status:     workload.Status{Replicas: existing, ReadyReplicas: ready},
	}
}

// leanMeta is what Lean keeps of fullMeta.
func leanMeta(name string, annotations map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "shop", UID: types.UID("uid-" + name), ResourceVersion: "4711", Annotations: annotations}
}

func TestLean(t *testing.T) {
	qscale := map[string]string{"qscale.io/triggers": ordersTrigger, "qscale.io/max-replicas": "20", "qscale.io/status": `{"ready":true}`}
	statefulSet := &appsv1.StatefulSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: fullMeta("ledger", qscale),
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr[int32](2), ServiceName: "ledger", Template: podTemplate("ledger"),
			Selector:             &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "ledger"}},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}}},
		},
		Status: appsv1.StatefulSetStatus{Replicas: 2, ReadyReplicas: 1, CurrentRevision: "ledger-7d9f", UpdateRevision: "ledger-7d9f"},
	}
	ownHPA := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{
			Name: "qscale-orders", Namespace: "shop", UID: "uid-hpa", ResourceVersion: "12",
			Labels:          map[string]string{LabelManagedBy: ManagedByQscale},
			Annotations:     map[string]string{annotationSpecHash: "0123456789abcdef"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "orders", UID: "uid-orders", Controller: ptr(true)}},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "qscale", Operation: metav1.ManagedFieldsOperationUpdate}},
		},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "orders"},
			MinReplicas:    ptr[int32](1), MaxReplicas: 20,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{
				Metric: autoscalingv2.MetricIdentifier{Name: "qscale-orders"}, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType}}}},
		},
		Status: autoscalingv2.HorizontalPodAutoscalerStatus{CurrentReplicas: 3, DesiredReplicas: 4,
			Conditions: []autoscalingv2.HorizontalPodAutoscalerCondition{{Type: autoscalingv2.AbleToScale, Status: corev1.ConditionTrue, Message: "recommended size matches current size"}}},
	}
	ownHPAWant := ownHPA.DeepCopy()
	ownHPAWant.ManagedFields, ownHPAWant.Status = nil, autoscalingv2.HorizontalPodAutoscalerStatus{}
	ownHPAWant.Spec = autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: ownHPA.Spec.ScaleTargetRef}

	foreignHPA := ownHPA.DeepCopy()
	foreignHPA.Name, foreignHPA.Labels = "orders", map[string]string{"app.kubernetes.io/managed-by": "Helm"}
	foreignHPAWant := foreignHPA.DeepCopy()
	foreignHPAWant.ManagedFields, foreignHPAWant.Status = nil, autoscalingv2.HorizontalPodAutoscalerStatus{}
	foreignHPAWant.Spec = autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: foreignHPA.Spec.ScaleTargetRef}

	lease := &coordinationv1.Lease{ObjectMeta: fullMeta("qscale.io", nil), Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr("a")}}
	leaseWant := lease.DeepCopy()
	leaseWant.ManagedFields = nil

	tombstone := func() toolscache.DeletedFinalStateUnknown {
		return toolscache.DeletedFinalStateUnknown{Key: "shop/orders", Obj: fullDeployment("orders", qscale)}
	}

	tests := []struct {
		name    string
		in, out any
	}{
		{
			name: "an annotated Deployment keeps its identity, qscale.io annotations and replica counts",
			in:   decoded[workload.Deployment](t, fullDeployment("orders", qscale)),
			out:  &workload.Deployment{Workload: leanWorkload("Deployment", "orders", qscale, 3, 3, 2)},
		},
		{
			name: "a Deployment whose triggers are gone keeps its other qscale.io annotations",
			in:   decoded[workload.Deployment](t, fullDeployment("orders", map[string]string{"qscale.io/min-replicas": "0"})),
			out:  &workload.Deployment{Workload: leanWorkload("Deployment", "orders", map[string]string{"qscale.io/min-replicas": "0"}, 3, 3, 2)},
		},
		{
			name: "an unannotated Deployment keeps its identity and replica counts only",
			in:   decoded[workload.Deployment](t, fullDeployment("web", nil)),
			out:  &workload.Deployment{Workload: leanWorkload("Deployment", "web", nil, 3, 3, 2)},
		},
		{
			name: "a StatefulSet keeps what a Deployment keeps",
			in:   decoded[workload.StatefulSet](t, statefulSet),
			out:  &workload.StatefulSet{Workload: leanWorkload("StatefulSet", "ledger", qscale, 2, 2, 1)},
		},
		{name: "qscale's HPA keeps its metadata and the workload it scales of its spec", in: ownHPA, out: ownHPAWant},
		{name: "another HPA keeps the workload it scales of its spec", in: foreignHPA, out: foreignHPAWant},
		{name: "any other object loses its managed fields", in: lease, out: leaseWant},
		{name: "a tombstone passes as it is", in: tombstone(), out: tombstone()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Lean(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Lean(got)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range []any{got, again} {
				if !reflect.DeepEqual(o, tt.out) {
					t.Fatalf("got\n%s\nwant\n%s", asJSON(t, o), asJSON(t, tt.out))
				}
			}
		})
	}
}

func asJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The reconciler reads workloads and HPAs as the cache holds them (the harness reads through
// qscaleView: workload types, through Lean) and its writes leave every field it never read
// unharmed: the HPA gets its owner, and a realistic Deployment scaled through the scale
// subresource and given its status keeps its template, labels and annotations.
func TestReconcileOnLeanReadsLeavesTheWorkloadWhole(t *testing.T) {
	orig := fullDeployment("orders", map[string]string{spec.AnnotationTriggers: ordersTrigger, spec.AnnotationMaxReplicas: "20"})
	h := newHarness(t, store.KindDeployment, orig.DeepCopy())
	h.reconcile("orders")
	hpa, ok := h.hpa("qscale-orders")
	if !ok {
		t.Fatal("no HPA created")
	}
	if ref := metav1.GetControllerOf(hpa); ref == nil || ref.UID != orig.UID || ref.Kind != "Deployment" || ref.Name != "orders" {
		t.Fatalf("the HPA's controller is %+v", ref)
	}
	h.update("orders", func(d *appsv1.Deployment) { d.Annotations[spec.AnnotationPausedReplicas] = "1" })
	h.reconcile("orders")
	if got := h.replicas(); got != 1 {
		t.Fatalf("replicas = %d, want the paused 1", got)
	}
	var got appsv1.Deployment
	if err := h.client.Get(context.Background(), types.NamespacedName{Namespace: "shop", Name: "orders"}, &got); err != nil {
		t.Fatal(err)
	}
	orig.Annotations[spec.AnnotationPausedReplicas] = "1"
	orig.Spec.Replicas = ptr[int32](1)
	if _, ok := got.Annotations[spec.AnnotationStatus]; !ok {
		t.Fatal("no status written")
	}
	delete(got.Annotations, spec.AnnotationStatus)
	if !reflect.DeepEqual(got.Spec, orig.Spec) || !reflect.DeepEqual(got.Labels, orig.Labels) || !reflect.DeepEqual(got.Annotations, orig.Annotations) {
		t.Fatalf("the Deployment changed beyond its replicas and status:\n%s\nwant\n%s", asJSON(t, got), asJSON(t, orig))
	}
}
