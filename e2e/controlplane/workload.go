package controlplane

import (
	"encoding/json"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Deployment returns a Deployment with the given replicas and annotations whose pods run no
// containers: they stay Pending (an HPA needs only the Deployment), or with
// Options.PodStartDelay kwok starts them on its fake Node.
func Deployment(namespace, name string, replicas int32, annotations map[string]string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Annotations: annotations},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Image: "registry.invalid/" + name + ":1"}}},
			},
		},
	}
}

// RealisticDeployment returns a Deployment with a pod template of the kind clusters are full
// of: three containers and an init container with env from literals, ConfigMaps, Secrets and
// the downward API, probes, resources and five volumes, labels and annotations, and the
// last-applied-configuration annotation that `kubectl apply` writes (the object again, as
// JSON). It stands for the workloads qscale does not scale but watches all the same; the API
// server adds managed fields on top. As with Deployment, its pods run only on kwok's Node.
func RealisticDeployment(namespace, name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "shop", "app.kubernetes.io/version": "1.4.2"}
	d := &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels, Annotations: map[string]string{
			"meta.helm.sh/release-name": "shop", "meta.helm.sh/release-namespace": namespace, "team": "orders",
		}},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9100"}},
				Spec:       realisticPodSpec(name),
			},
		},
	}
	applied, _ := json.Marshal(d) //nolint:errchkjson // a plain struct of API types always marshals
	d.Annotations["kubectl.kubernetes.io/last-applied-configuration"] = string(applied)
	return d
}

func realisticPodSpec(name string) corev1.PodSpec {
	secret := func(key string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name + "-credentials"}, Key: key}}
	}
	env := []corev1.EnvVar{
		{Name: "LOG_LEVEL", Value: "info"}, {Name: "LOG_FORMAT", Value: "json"},
		{Name: "KAFKA_BROKERS", Value: "kafka-0.kafka.data.svc:9092,kafka-1.kafka.data.svc:9092,kafka-2.kafka.data.svc:9092"},
		{Name: "DATABASE_URL", Value: "postgres://" + name + "@postgres.data.svc:5432/" + name + "?sslmode=verify-full"},
		{Name: "DATABASE_PASSWORD", ValueFrom: secret("db-password")}, {Name: "API_TOKEN", ValueFrom: secret("api-token")},
		{Name: "FEATURE_FLAGS", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name + "-config"}, Key: "features"}}},
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "GOMEMLIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory"}}},
	}
	resources := func(cpu, memory string) corev1.ResourceRequirements {
		return corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(memory)},
		}
	}
	probe := func(path string, port string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString(port)}},
			InitialDelaySeconds: 5, PeriodSeconds: 10, TimeoutSeconds: 2, FailureThreshold: 3}
	}
	secure := &corev1.SecurityContext{RunAsNonRoot: ptr(true), ReadOnlyRootFilesystem: ptr(true), AllowPrivilegeEscalation: ptr(false),
		Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
	mounts := []corev1.VolumeMount{
		{Name: "config", MountPath: "/etc/" + name}, {Name: "tls", MountPath: "/etc/tls", ReadOnly: true},
		{Name: "tmp", MountPath: "/tmp"}, {Name: "cache", MountPath: "/var/cache/" + name},
	}
	return corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "migrate", Image: "registry.invalid/" + name + "-migrate:1.4.2", Args: []string{"migrate", "--to", "latest"},
			Env: env, VolumeMounts: mounts[:2], Resources: resources("100m", "128Mi"), SecurityContext: secure}},
		Containers: []corev1.Container{
			{Name: "app", Image: "registry.invalid/" + name + ":1.4.2", Args: []string{"serve", "--config", "/etc/" + name + "/config.yaml"},
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "grpc", ContainerPort: 9090}},
				Env:   env, VolumeMounts: mounts, Resources: resources("500m", "512Mi"), SecurityContext: secure,
				LivenessProbe: probe("/healthz", "http"), ReadinessProbe: probe("/readyz", "http")},
			{Name: "log-shipper", Image: "registry.invalid/fluent-bit:3.1.4", Args: []string{"-c", "/etc/" + name + "/fluent-bit.conf"},
				Env: env[:2], VolumeMounts: mounts[:1], Resources: resources("50m", "64Mi"), SecurityContext: secure},
			{Name: "exporter", Image: "registry.invalid/exporter:0.9.1", Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9100}},
				Env: env[:3], Resources: resources("20m", "32Mi"), SecurityContext: secure, LivenessProbe: probe("/metrics", "metrics")},
		},
		Volumes: []corev1.Volume{
			{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: name + "-config"}}}},
			{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: name + "-tls"}}},
			{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
			{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "vault-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: "vault", Path: "token"}}}}}},
		},
		ServiceAccountName:            name,
		TerminationGracePeriodSeconds: ptr[int64](45),
		SecurityContext:               &corev1.PodSecurityContext{FSGroup: ptr[int64](2000), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
		Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{
			{Weight: 100, PodAffinityTerm: corev1.PodAffinityTerm{TopologyKey: "kubernetes.io/hostname",
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": name}}}}}}},
		Tolerations: []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "shop", Effect: corev1.TaintEffectNoSchedule}},
	}
}

func ptr[T any](v T) *T { return &v }
