//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"

	"github.com/qscale/qscale/e2e/controlplane"
	"github.com/qscale/qscale/scaler/status"
)

// The chart is installed as `helm install qscale charts/qscale -n qscale`; its workloads live in
// chartApps.
const (
	chartRelease   = "qscale"
	chartNamespace = "qscale"
	chartApps      = "apps"
	chartSA        = "system:serviceaccount:" + chartNamespace + ":qscale"
	// memberLabel marks the replicas' membership Leases, beside the leader's Lease.
	memberLabel = "qscale.io/member"
	// samplesPath is where a replica posts its samples to the others when they share the polling.
	samplesPath = "/qscale/v1/samples"
)

// TestChart installs charts/qscale with helm into a control plane of its own, then runs qscale
// as a local process with exactly what the chart gives its pod: the ServiceAccount's token (so
// the chart's RBAC and nothing more), the Deployment's arguments, and the serving certificate
// the APIService's caBundle vouches for. The HPA controller reads the metric through the
// chart's APIService, so a Kafka backlog scales a Deployment: first with the default values
// (cluster-wide, two replicas sharing the polling, so leader election and a membership Lease),
// then after `helm upgrade` to one watched namespace, which must keep the certificate. At each
// step, SubjectAccessReviews show the ServiceAccount may do what qscale needs and no more, and
// qscale's log shows no request was refused.
//
// There is no kubelet here, so the chart's pod never runs (one local qscale stands for its
// replicas, its pod IP 127.0.0.1); and no kube-proxy, so the aggregator reaches qscale through
// the chart's Service turned into an ExternalName for localhost, on the port the chart puts in
// the APIService.
func TestChart(t *testing.T) {
	c := startChartCluster(t)
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	values := []string{
		"--set", "service.port=" + strconv.Itoa(ports[0]),
		"--set", "podDisruptionBudget.enabled=true",
		"--set", "networkPolicy.enabled=true",
		"--set", "grafanaDashboard.enabled=true", // a ConfigMap: the API server must take the dashboard
	}

	c.helm(append([]string{"install", chartRelease, chartDir(t), "-n", chartNamespace, "--create-namespace"}, values...)...)
	c.checkEveryObjectExists()
	ca := c.servingCertificate()

	kafkaTopic(t, "chart-orders", 8)
	commitAt(t, "chart-workers", "chart-orders", map[int32]int64{0: 0, 1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0, 7: 0})
	c.deployment("workers", map[string]string{
		"qscale.io/triggers":         kafkaTrigger("orders", "chart-workers", "chart-orders"),
		"qscale.io/max-replicas":     "6",
		"qscale.io/polling-interval": "1s",
		"qscale.io/hpa-behavior":     fastHPA,
	})

	t.Run("default values, cluster-wide", func(t *testing.T) {
		c.waitAccess(t, clusterWideAccess)
		q := c.runQscale(t, ports[0], "qscale-cluster-wide.log")
		c.waitLease(t, q.Log)
		c.waitMembers(t, q.Log, 1)
		produce(t, "chart-orders", map[int32]int{0: 21, 1: 20})
		waitReplicasOf(t, c.kube, q.Log, chartApps, "workers", 5, 60*time.Second) // ceil(41/10)
		// Its Secret is read by name, with the chart's rights: a refusal would be in the log.
		c.secret("broken-creds", map[string]string{"username": "u"})
		c.deployment("broken", map[string]string{"qscale.io/triggers": "- type: kafka\n  metadata: {}\n  authenticationRef: {name: broken-creds}\n"})
		note := waitEventOf(t, c.kube, q.Log, chartApps, "broken", "InvalidScalingConfig", 30*time.Second)
		if strings.Contains(note, "does not exist") {
			t.Errorf("qscale could not read the Secret the trigger names: %s", note)
		}
		// The status is written with the chart's rights too, on the workload with an HPA and
		// on the one without.
		waitStatusIn(t, c.kube, q.Log, chartApps, "workers", func(s *status.Status) bool { return s.Ready })
		waitStatusIn(t, c.kube, q.Log, chartApps, "broken", func(s *status.Status) bool { return !s.Ready })
		q.Stop()
		c.waitMembers(t, q.Log, 0) // a stopping replica deletes its membership Lease
		checkNothingRefused(t, q.Log)
		c.checkAccess(t, clusterWideAccess)
	})

	t.Run("helm upgrade: one namespace, two replicas, forwarding", func(t *testing.T) {
		c.unexpose() // helm puts its own Service back
		c.helm(append([]string{"upgrade", chartRelease, chartDir(t), "-n", chartNamespace,
			"--set", "watchNamespace=" + chartApps, "--set", "replicaCount=2",
			"--set", "forward.url=https://keda-operator-metrics-apiserver.keda.svc:443",
			"--set", "forward.caBundle=" + c.clusterCABundle()}, values...)...)
		if got := c.servingCertificate(); !bytes.Equal(got.ca, ca.ca) || !bytes.Equal(got.cert, ca.cert) {
			t.Fatal("helm upgrade replaced the serving certificate or the APIService's caBundle")
		}
		c.waitAccess(t, namespacedAccess)
		q := c.runQscale(t, ports[0], "qscale-namespaced.log")
		c.waitLease(t, q.Log)
		c.waitMembers(t, q.Log, 1)
		catchUp(t, "chart-workers", "chart-orders")
		waitReplicasOf(t, c.kube, q.Log, chartApps, "workers", 1, 60*time.Second)
		c.deployment("broken-again", map[string]string{"qscale.io/triggers": "- type: kafka\n  metadata: {}\n"})
		waitEventOf(t, c.kube, q.Log, chartApps, "broken-again", "InvalidScalingConfig", 30*time.Second)
		q.Stop()
		c.waitMembers(t, q.Log, 0)
		checkNothingRefused(t, q.Log)
		c.checkAccess(t, namespacedAccess)
	})
}

// access is one question for the API server's authorizer about the chart's ServiceAccount: on
// a resource, or with path on a non-resource URL.
type access struct {
	verb, group, resource, subresource, namespace, name string
	path                                                string
	allowed                                             bool
}

func (a access) String() string {
	if a.path != "" {
		return a.verb + " " + a.path
	}
	r := a.resource
	if a.subresource != "" {
		r += "/" + a.subresource
	}
	if a.group != "" {
		r += "." + a.group
	}
	if a.name != "" {
		r += " " + a.name
	}
	where := "all namespaces"
	if a.namespace != "" {
		where = "namespace " + a.namespace
	}
	return fmt.Sprintf("%s %s in %s", a.verb, r, where)
}

// What qscale may do, and some of what it must not, with the default values.
var clusterWideAccess = []access{
	{verb: "watch", group: "apps", resource: "deployments", allowed: true},
	{verb: "list", group: "apps", resource: "statefulsets", allowed: true},
	{verb: "update", group: "apps", resource: "deployments", subresource: "scale", namespace: "default", allowed: true},
	{verb: "update", group: "apps", resource: "statefulsets", subresource: "scale", namespace: chartApps, allowed: true},
	{verb: "create", group: "autoscaling", resource: "horizontalpodautoscalers", namespace: chartApps, allowed: true},
	{verb: "patch", group: "autoscaling", resource: "horizontalpodautoscalers", namespace: chartApps, allowed: true},
	{verb: "patch", group: "apps", resource: "deployments", namespace: chartApps, allowed: true}, // the status annotation
	{verb: "patch", group: "apps", resource: "statefulsets", namespace: "default", allowed: true},
	{verb: "get", resource: "secrets", namespace: chartApps, allowed: true}, // trigger Secrets, by name
	{verb: "list", resource: "secrets"}, // never every Secret
	{verb: "watch", resource: "secrets"},
	{verb: "list", resource: "secrets", namespace: chartApps},
	{verb: "watch", resource: "secrets", namespace: chartApps},
	{verb: "create", group: "events.k8s.io", resource: "events", namespace: chartApps, allowed: true},
	{verb: "create", group: "authentication.k8s.io", resource: "tokenreviews", allowed: true},
	{verb: "create", group: "authorization.k8s.io", resource: "subjectaccessreviews", allowed: true},
	{verb: "get", resource: "configmaps", namespace: "kube-system", name: "extension-apiserver-authentication", allowed: true},
	// Never more than that.
	{verb: "update", group: "apps", resource: "deployments", namespace: chartApps},
	{verb: "delete", group: "apps", resource: "deployments", namespace: chartApps},
	{verb: "create", resource: "pods", namespace: chartApps},
	{verb: "create", resource: "secrets", namespace: chartApps},
	{verb: "update", resource: "secrets", namespace: chartApps},
	{verb: "list", resource: "configmaps", namespace: chartApps},
	{verb: "get", resource: "configmaps", namespace: "kube-system", name: "kube-proxy"},
	// Two replicas: leader election, and the membership Leases of shared polling (listed and
	// watched to see who is alive, each deleted by its replica as it stops), in the release
	// namespace alone.
	{verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: chartNamespace, allowed: true},
	{verb: "create", group: "coordination.k8s.io", resource: "leases", namespace: chartNamespace, allowed: true},
	{verb: "list", group: "coordination.k8s.io", resource: "leases", namespace: chartNamespace, allowed: true},
	{verb: "watch", group: "coordination.k8s.io", resource: "leases", namespace: chartNamespace, allowed: true},
	{verb: "delete", group: "coordination.k8s.io", resource: "leases", namespace: chartNamespace, allowed: true},
	{verb: "create", resource: "events", namespace: chartNamespace, allowed: true}, // LeaderElection, on the Lease
	{verb: "list", group: "coordination.k8s.io", resource: "leases"},
	{verb: "delete", group: "coordination.k8s.io", resource: "leases", namespace: chartApps},
	{verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: "kube-system"},
	// Shared polling: the replicas post their samples to each other's metrics API, which asks
	// the API server's authorizer; that path and verb alone.
	{verb: "post", path: samplesPath, allowed: true},
	{verb: "get", path: samplesPath},
	{verb: "post", path: "/qscale/v1/other"},
	{verb: "post", path: "/apis/external.metrics.k8s.io/v1beta1"},
	{verb: "create", group: "rbac.authorization.k8s.io", resource: "rolebindings", namespace: chartApps},
	{verb: "create", group: "apiregistration.k8s.io", resource: "apiservices"},
	{verb: "get", group: "external.metrics.k8s.io", resource: "s0-rabbitmq-orders", namespace: chartApps}, // nothing forwarded
}

// With watchNamespace, nothing outside that namespace but the Leases in the release
// namespace, posting samples to the other replicas, the delegated authentication qscale needs
// as an aggregated API server, and, as it forwards, reading external metrics.
var namespacedAccess = []access{
	{verb: "watch", group: "apps", resource: "deployments", namespace: chartApps, allowed: true},
	{verb: "update", group: "apps", resource: "deployments", subresource: "scale", namespace: chartApps, allowed: true},
	{verb: "patch", group: "apps", resource: "deployments", namespace: chartApps, allowed: true}, // the status annotation
	{verb: "delete", group: "autoscaling", resource: "horizontalpodautoscalers", namespace: chartApps, allowed: true},
	{verb: "get", resource: "secrets", namespace: chartApps, allowed: true},
	{verb: "list", resource: "secrets", namespace: chartApps},
	{verb: "watch", resource: "secrets", namespace: chartApps},
	{verb: "create", group: "events.k8s.io", resource: "events", namespace: chartApps, allowed: true},
	{verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: chartNamespace, allowed: true},
	{verb: "list", group: "coordination.k8s.io", resource: "leases", namespace: chartNamespace, allowed: true}, // membership
	{verb: "watch", group: "coordination.k8s.io", resource: "leases", namespace: chartNamespace, allowed: true},
	{verb: "delete", group: "coordination.k8s.io", resource: "leases", namespace: chartNamespace, allowed: true},
	{verb: "create", resource: "events", namespace: chartNamespace, allowed: true}, // LeaderElection, on the Lease
	{verb: "create", group: "authentication.k8s.io", resource: "tokenreviews", allowed: true},
	// A non-resource URL has no namespace: the samples the replicas post to each other.
	{verb: "post", path: samplesPath, allowed: true},
	// Nothing else cluster-wide, nothing in another namespace.
	{verb: "list", resource: "secrets"},
	{verb: "get", resource: "secrets", namespace: "default"},
	{verb: "get", resource: "secrets", namespace: chartNamespace},
	{verb: "watch", group: "apps", resource: "deployments"},
	{verb: "list", group: "apps", resource: "deployments", namespace: "default"},
	{verb: "patch", group: "apps", resource: "deployments", namespace: "default"},
	{verb: "update", group: "apps", resource: "deployments", subresource: "scale", namespace: "default"},
	{verb: "create", group: "autoscaling", resource: "horizontalpodautoscalers", namespace: "default"},
	{verb: "create", group: "events.k8s.io", resource: "events", namespace: "default"},
	{verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: chartApps},
	{verb: "list", group: "coordination.k8s.io", resource: "leases", namespace: chartApps},
	{verb: "delete", group: "coordination.k8s.io", resource: "leases", namespace: chartApps},
	{verb: "post", path: "/qscale/v1/other"},
	{verb: "update", group: "apps", resource: "deployments", namespace: chartApps},
	{verb: "create", resource: "pods", namespace: chartApps},
	// Forwarding (forward.url): qscale reads the other adapter's metrics wherever its HPAs are.
	{verb: "get", group: "external.metrics.k8s.io", resource: "s0-rabbitmq-orders", namespace: "default", allowed: true},
	{verb: "list", group: "external.metrics.k8s.io", resource: "s0-rabbitmq-orders", namespace: chartApps, allowed: true},
	{verb: "create", group: "external.metrics.k8s.io", resource: "s0-rabbitmq-orders", namespace: chartApps},
}

// chartCluster is the chart test's own control plane: the shared one already has an APIService
// for the external metrics API.
type chartCluster struct {
	t    *testing.T
	cp   *controlplane.ControlPlane
	kube *kubernetes.Clientset
	dyn  dynamic.Interface
	helm func(args ...string) []byte // runs helm against this cluster; its standard output
	dir  string
}

func startChartCluster(t *testing.T) *chartCluster {
	helmBin := os.Getenv("QSCALE_HELM")
	if helmBin == "" {
		t.Fatal("QSCALE_HELM names no helm binary: run `make test-chart`")
	}
	dir := t.TempDir()
	cp, err := controlplane.Start(ctxFor(t, 2*time.Minute), controlplane.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cp.Stop)
	c := &chartCluster{t: t, cp: cp, dir: dir}
	if c.kube, err = kubernetes.NewForConfig(cp.Config); err != nil {
		t.Fatal(err)
	}
	if c.dyn, err = dynamic.NewForConfig(cp.Config); err != nil {
		t.Fatal(err)
	}
	c.helm = func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(helmBin, append(args, "--kubeconfig", cp.Kubeconfig)...) //nolint:gosec // the helm binary the Makefile built
		cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(dir, "helm"),
			"HELM_CONFIG_HOME="+filepath.Join(dir, "helm"), "HELM_DATA_HOME="+filepath.Join(dir, "helm"))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
		}
		return out
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: chartApps}}
	if _, err := c.kube.CoreV1().Namespaces().Create(ctxFor(t, 10*time.Second), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return c
}

func chartDir(t *testing.T) string {
	dir, err := filepath.Abs(filepath.Join("..", "charts", "qscale"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func (c *chartCluster) secret(name string, data map[string]string) {
	c.t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: chartApps}, StringData: data}
	if _, err := c.kube.CoreV1().Secrets(chartApps).Create(ctxFor(c.t, 10*time.Second), s, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

func (c *chartCluster) deployment(name string, annotations map[string]string) {
	c.t.Helper()
	d := controlplane.Deployment(chartApps, name, 1, annotations)
	if _, err := c.kube.AppsV1().Deployments(chartApps).Create(ctxFor(c.t, 10*time.Second), d, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

// checkEveryObjectExists reads back every object of the release's manifest from the API
// server: helm install succeeding means the API server accepted them all, and this shows it
// kept them.
func (c *chartCluster) checkEveryObjectExists() {
	t := c.t
	t.Helper()
	out := c.helm("get", "manifest", chartRelease, "-n", chartNamespace)
	disco := memory.NewMemCacheClient(c.kube.Discovery())
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(disco)
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	kinds := map[string]int{}
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if len(u.Object) == 0 {
			continue
		}
		gvk := u.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s %s: %v", gvk, u.GetName(), err)
		}
		var r dynamic.ResourceInterface = c.dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			r = c.dyn.Resource(m.Resource).Namespace(u.GetNamespace())
		}
		if _, err := r.Get(ctxFor(t, 10*time.Second), u.GetName(), metav1.GetOptions{}); err != nil {
			t.Errorf("%s %s/%s is not in the cluster: %v", gvk.Kind, u.GetNamespace(), u.GetName(), err)
		}
		kinds[gvk.Kind]++
	}
	for _, k := range []string{"Deployment", "Service", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
		"Role", "RoleBinding", "Secret", "APIService", "PodDisruptionBudget", "NetworkPolicy", "ConfigMap"} {
		if kinds[k] == 0 {
			t.Errorf("the release has no %s (it has %v)", k, kinds)
		}
	}
}

// servingMaterial is the serving certificate the chart generated, and the CA the APIService trusts.
type servingMaterial struct{ ca, cert, key []byte }

func (c *chartCluster) servingCertificate() servingMaterial {
	c.t.Helper()
	ctx := ctxFor(c.t, 10*time.Second)
	s, err := c.kube.CoreV1().Secrets(chartNamespace).Get(ctx, "qscale-tls", metav1.GetOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	api, err := c.dyn.Resource(schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}).Get(ctx, "v1beta1.external.metrics.k8s.io", metav1.GetOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	caBundle, _, _ := unstructured.NestedString(api.Object, "spec", "caBundle")
	if caBundle == "" || caBundle != base64.StdEncoding.EncodeToString(s.Data["ca.crt"]) {
		c.t.Fatal("the APIService's caBundle is not the CA in the qscale-tls Secret")
	}
	return servingMaterial{ca: s.Data["ca.crt"], cert: s.Data["tls.crt"], key: s.Data["tls.key"]}
}

// runQscale runs qscale as the chart's pod would: as its ServiceAccount, with the Deployment's
// arguments and the Secret's certificate, serving on port, which the APIService names.
func (c *chartCluster) runQscale(t *testing.T, port int, logName string) *controlplane.Qscale {
	t.Helper()
	ctx := ctxFor(t, time.Minute)
	d, err := c.kube.AppsV1().Deployments(chartNamespace).Get(ctx, "qscale", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	container := d.Spec.Template.Spec.Containers[0]
	if strings.Join(container.Command, " ") != "qscale run" {
		t.Fatalf("the chart runs %q, want qscale run", container.Command)
	}
	args, err := expandPodEnv(container.Args, container.Env)
	if err != nil {
		t.Fatal(err)
	}
	if ca := c.forwardCA(d.Spec.Template.Spec); ca != "" {
		args = append(args, "--forward-ca-file="+ca)
	}
	if !mountsSecret(d.Spec.Template.Spec, "qscale-tls") {
		t.Fatalf("the chart's pod does not mount the qscale-tls Secret: %+v", d.Spec.Template.Spec.Volumes)
	}
	tls := c.servingCertificate()
	certDir := filepath.Join(c.dir, "serving-cert")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"tls.crt": tls.cert, "tls.key": tls.key} {
		if err := os.WriteFile(filepath.Join(certDir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	args = append(args,
		"--tls-cert-file="+filepath.Join(certDir, "tls.crt"), "--tls-private-key-file="+filepath.Join(certDir, "tls.key"),
		"--cert-dir="+filepath.Join(c.dir, "scratch"))
	q, err := c.cp.RunQscale(ctx, qscaleBin(), controlplane.QscaleOptions{
		Kubeconfig: c.serviceAccountKubeconfig(), SecurePort: port, Args: args, Log: filepath.Join(c.dir, logName),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Stop)
	c.expose()
	if err := c.cp.WaitAPIServiceAvailable(ctx, "v1beta1.external.metrics.k8s.io", 30*time.Second); err != nil {
		t.Fatalf("%v\nqscale log:\n%s", err, c.cp.TailFile(q.Log, 30))
	}
	return q
}

// envRef is a reference $(NAME) to a container's variable in its arguments.
var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expandPodEnv expands $(NAME) in a container's arguments from its env as the kubelet does:
// values as written, and the pod's IP (status.podIP) as 127.0.0.1, where the local qscale
// listens. A reference to a variable the test cannot stand in for is an error, so that no
// literal $(NAME) reaches qscale.
func expandPodEnv(args []string, env []corev1.EnvVar) ([]string, error) {
	vars := map[string]string{}
	for _, e := range env {
		switch {
		case e.ValueFrom == nil:
			vars[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP":
			vars[e.Name] = "127.0.0.1"
		}
	}
	out := make([]string, len(args))
	var errs []error
	for i, a := range args {
		out[i] = envRef.ReplaceAllStringFunc(a, func(ref string) string {
			v, ok := vars[envRef.FindStringSubmatch(ref)[1]]
			if !ok {
				errs = append(errs, fmt.Errorf("the chart's argument %q names %s, which the test cannot give", a, ref))
				return ref
			}
			return v
		})
	}
	return out, errors.Join(errs...)
}

// clusterCABundle is the control plane's CA, base64-encoded as forward.caBundle takes it: a
// certificate authority qscale can load, though nothing is forwarded here.
func (c *chartCluster) clusterCABundle() string {
	c.t.Helper()
	pem, err := os.ReadFile(c.cp.Config.CAFile)
	if err != nil {
		c.t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(pem)
}

// forwardCA writes the CA bundle of the ConfigMap the chart's pod mounts for
// --forward-ca-file to a local file, and returns its path; "" when the pod mounts none.
func (c *chartCluster) forwardCA(pod corev1.PodSpec) string {
	c.t.Helper()
	for _, v := range pod.Volumes {
		if v.Name != "forward-ca" || v.ConfigMap == nil {
			continue
		}
		cm, err := c.kube.CoreV1().ConfigMaps(chartNamespace).Get(ctxFor(c.t, 10*time.Second), v.ConfigMap.Name, metav1.GetOptions{})
		if err != nil {
			c.t.Fatal(err)
		}
		path := filepath.Join(c.dir, "forward-ca.crt")
		if err := os.WriteFile(path, cm.BinaryData["ca.crt"], 0o600); err != nil {
			c.t.Fatal(err)
		}
		return path
	}
	return ""
}

func mountsSecret(pod corev1.PodSpec, name string) bool {
	for _, v := range pod.Volumes {
		if v.Secret != nil && v.Secret.SecretName == name {
			return true
		}
	}
	return false
}

// serviceAccountKubeconfig writes a kubeconfig holding a token of the chart's ServiceAccount.
func (c *chartCluster) serviceAccountKubeconfig() string {
	c.t.Helper()
	path, err := c.cp.ServiceAccountKubeconfig(ctxFor(c.t, 10*time.Second), chartNamespace, "qscale")
	if err != nil {
		c.t.Fatal(err)
	}
	return path
}

// expose turns the chart's Service into an ExternalName for localhost: the aggregator then
// dials localhost on the APIService's port, where the local qscale serves, and still verifies
// the certificate against the caBundle for the name qscale.qscale.svc.
func (c *chartCluster) expose() {
	c.t.Helper()
	ctx := ctxFor(c.t, 10*time.Second)
	svc, err := c.kube.CoreV1().Services(chartNamespace).Get(ctx, "qscale", metav1.GetOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return
	}
	svc.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost", Ports: svc.Spec.Ports}
	if _, err := c.kube.CoreV1().Services(chartNamespace).Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

// unexpose deletes the Service expose changed, so that helm upgrade creates the chart's own.
func (c *chartCluster) unexpose() {
	c.t.Helper()
	err := c.kube.CoreV1().Services(chartNamespace).Delete(ctxFor(c.t, 10*time.Second), "qscale", metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		c.t.Fatal(err)
	}
}

// waitLease waits until the local qscale, the only replica running, holds the leader Lease.
func (c *chartCluster) waitLease(t *testing.T, qscaleLog string) {
	t.Helper()
	err := waitUntil(context.Background(), 30*time.Second, func() (bool, error) {
		leases, err := c.kube.CoordinationV1().Leases(chartNamespace).List(context.Background(), metav1.ListOptions{LabelSelector: "!" + memberLabel})
		if err != nil {
			return false, err
		}
		for _, l := range leases.Items {
			if l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no Lease held in %s: %v\nqscale log:\n%s", chartNamespace, err, c.cp.TailFile(qscaleLog, 30))
	}
}

// waitMembers waits until the leader-election namespace holds want membership Leases: the
// local qscale creates its own with the chart's rights, and deletes it as it stops.
func (c *chartCluster) waitMembers(t *testing.T, qscaleLog string, want int) {
	t.Helper()
	got := -1
	err := waitUntil(context.Background(), 30*time.Second, func() (bool, error) {
		leases, err := c.kube.CoordinationV1().Leases(chartNamespace).List(context.Background(), metav1.ListOptions{LabelSelector: memberLabel + "=true"})
		if err != nil {
			return false, err
		}
		got = len(leases.Items)
		return got == want, nil
	})
	if err != nil {
		t.Fatalf("%d membership Leases in %s, want %d: %v\nqscale log:\n%s", got, chartNamespace, want, err, c.cp.TailFile(qscaleLog, 30))
	}
}

// checkAccess asks the API server's authorizer each question about the chart's ServiceAccount.
func (c *chartCluster) checkAccess(t *testing.T, want []access) {
	t.Helper()
	for _, a := range want {
		if got := c.allowed(t, a); got != a.allowed {
			t.Errorf("%s: allowed = %t, want %t", a, got, a.allowed)
		}
	}
}

// waitAccess waits until the authorizer answers every question as want says. The API
// server's RBAC authorizer reads Roles and bindings through an informer, so for a moment
// after helm writes them it still answers from the old ones; qscale started in that moment
// would be refused.
func (c *chartCluster) waitAccess(t *testing.T, want []access) {
	t.Helper()
	err := waitUntil(context.Background(), 30*time.Second, func() (bool, error) {
		for _, a := range want {
			if c.allowed(t, a) != a.allowed {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		c.checkAccess(t, want)
		t.Fatalf("the authorizer does not give the chart's ServiceAccount the access wanted: %v", err)
	}
}

// allowed asks the authorizer whether the chart's ServiceAccount may do a.
func (c *chartCluster) allowed(t *testing.T, a access) bool {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   chartSA,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + chartNamespace, "system:authenticated"},
	}}
	if a.path != "" {
		sar.Spec.NonResourceAttributes = &authorizationv1.NonResourceAttributes{Verb: a.verb, Path: a.path}
	} else {
		sar.Spec.ResourceAttributes = &authorizationv1.ResourceAttributes{
			Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.subresource,
			Namespace: a.namespace, Name: a.name,
		}
	}
	got, err := c.kube.AuthorizationV1().SubjectAccessReviews().Create(ctxFor(t, 10*time.Second), sar, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return got.Status.Allowed
}

// checkNothingRefused fails if the API server refused any of qscale's requests: RBAC that is
// short of what qscale does shows up as "forbidden" in its log, even where qscale carries on
// (an Event it could not record, an informer it could not start).
func checkNothingRefused(t *testing.T, qscaleLog string) {
	t.Helper()
	out, err := os.ReadFile(qscaleLog) //nolint:gosec // the test's own log file
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(strings.ToLower(line), "forbidden") {
			t.Errorf("qscale was refused a request: %s", line)
		}
	}
}
