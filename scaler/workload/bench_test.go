package workload

import (
	"encoding/json"
	"runtime"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
)

// realistic is the JSON of a Deployment of the kind clusters are full of: three containers
// with env, resources and mounts, four volumes, labels and a last-applied-configuration.
func realistic(b *testing.B) []byte {
	b.Helper()
	env := []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "info"}, {Name: "KAFKA_BROKERS", Value: "kafka-0:9092,kafka-1:9092,kafka-2:9092"},
		{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}}}
	res := corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("256Mi")}}
	mounts := []corev1.VolumeMount{{Name: "config", MountPath: "/etc/app"}, {Name: "tls", MountPath: "/etc/tls"}}
	var containers []corev1.Container
	for _, name := range []string{"app", "log-shipper", "exporter"} {
		containers = append(containers, corev1.Container{Name: name, Image: "shop/" + name + ":1.4.2", Env: env, Resources: res, VolumeMounts: mounts})
	}
	d := appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "web-0042", Namespace: "team-7", UID: "6f1c2a7e-8d3b-4b8e-9c1e-2f4a5b6c7d8e", ResourceVersion: "184467",
			Labels:      map[string]string{"app.kubernetes.io/name": "web", "team": "7"},
			Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web-0042"}}`}},
		Spec: appsv1.DeploymentSpec{Replicas: new(int32),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "web"}},
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: containers, Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "web"}}}},
				{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "web-tls"}}},
			}}}},
		Status: appsv1.DeploymentStatus{Replicas: 2, ReadyReplicas: 2, AvailableReplicas: 2, UpdatedReplicas: 2},
	}
	out, err := json.Marshal(d)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// BenchmarkDecode decodes a realistic Deployment, sent as JSON and as protobuf, into
// client-go's type and into this package's, and reports the bytes each allocates per decode
// and the bytes a cache keeps of each once its metadata is stripped as qscale's transform
// strips it (client-go's with its spec and status cleared to the replica counts, as the
// transform did before this package).
func BenchmarkDecode(b *testing.B) {
	full := realistic(b)
	sent := map[string][]byte{"json": full}
	pb, err := k8sruntime.Encode(protobuf.NewSerializer(clientgoscheme.Scheme, clientgoscheme.Scheme), decodeJSON(b, full))
	if err != nil {
		b.Fatal(err)
	}
	sent["protobuf"] = pb
	ours, err := NewScheme()
	if err != nil {
		b.Fatal(err)
	}
	strip := func(m *metav1.ObjectMeta) {
		*m = metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion}
	}
	for _, tt := range []struct {
		name   string
		scheme *k8sruntime.Scheme
		keep   func(k8sruntime.Object)
	}{
		{name: "client-go", scheme: clientgoscheme.Scheme, keep: func(o k8sruntime.Object) {
			d := o.(*appsv1.Deployment)
			strip(&d.ObjectMeta)
			d.Spec = appsv1.DeploymentSpec{Replicas: d.Spec.Replicas}
			d.Status = appsv1.DeploymentStatus{Replicas: d.Status.Replicas, ReadyReplicas: d.Status.ReadyReplicas}
		}},
		{name: "workload", scheme: ours, keep: func(o k8sruntime.Object) { strip(&o.(*Deployment).ObjectMeta) }},
	} {
		for _, encoding := range []string{"json", "protobuf"} {
			b.Run(tt.name+"/"+encoding, func(b *testing.B) {
				decoder := serializer.NewCodecFactory(tt.scheme).UniversalDeserializer()
				var kept []k8sruntime.Object
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				b.ReportAllocs()
				for b.Loop() {
					o, err := k8sruntime.Decode(decoder, sent[encoding])
					if err != nil {
						b.Fatal(err)
					}
					tt.keep(o)
					kept = append(kept, o)
				}
				b.StopTimer()
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(len(kept)), "kept-B/obj")
				runtime.KeepAlive(kept)
			})
		}
	}
}

// decodeJSON is the client-go Deployment whose JSON is b.
func decodeJSON(b *testing.B, sent []byte) *appsv1.Deployment {
	b.Helper()
	var d appsv1.Deployment
	if err := json.Unmarshal(sent, &d); err != nil {
		b.Fatal(err)
	}
	return &d
}
