//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/qscale/qscale/e2e/controlplane"
)

// The identities of the scenario: qscale and the other adapter each run as a ServiceAccount,
// with the rights RBAC gives it and nothing more.
// The other adapter serves otherMetric = otherValue; a KEDA-like HPA targets an average of 10
// per replica on it.
const (
	forwardQscaleSA = "system:serviceaccount:qscale:qscale"
	otherMetric     = "other-queue"
	otherValue      = 30
	otherHPA        = "keda-hpa-w"
)

// TestForwardToAnotherAdapter runs qscale as the owner of the APIService, forwarding to a
// second external metrics adapter (e2e/othermetrics, as KEDA's metrics server would be) the
// metrics it does not serve. Both adapters are processes of their own on a control plane of
// the scenario's own, each as a ServiceAccount. An HPA on a qscale metric and an HPA on the
// other adapter's metric both scale their Deployments through the one APIService; the other
// adapter sees qscale's ServiceAccount, and refuses it until RBAC lets it read external
// metrics; a caller that qscale does not authorise is refused by qscale. Then the other
// adapter stops: the other HPA's metric fails while qscale's HPA keeps scaling.
func TestForwardToAnotherAdapter(t *testing.T) {
	t.Parallel()
	c := newCluster(t, controlplane.Options{})
	other := c.startOtherAdapter(t)
	q := c.startForwardingQscale(t, other)

	own, topic := c.laggingWorkloadOn(t, "own", "1s")
	c.waitReplicas(t, q, own, "w", 4, 60*time.Second) // ceil(35/10), served by qscale

	migrating := c.namespace("migrating")
	c.deployment(migrating, "w", nil)
	c.otherHPA(t, migrating)
	msg := c.waitOtherHPAFailing(t, q, migrating, "forbidden")
	if !strings.Contains(msg, `User "`+forwardQscaleSA+`"`) {
		t.Errorf("the other adapter refused someone else than qscale's ServiceAccount: %s", msg)
	}
	t.Logf("the other HPA, before qscale may read external metrics: %s", msg)

	c.grantQscaleExternalMetrics(t)
	c.waitReplicas(t, q, migrating, "w", 3, 60*time.Second) // ceil(30/10), served by the other adapter
	checkReadOnlyByQscale(t, other)
	c.checkRefusedByQscale(t, migrating)

	other.Stop()
	msg = c.waitOtherHPAFailing(t, q, migrating, "did not answer")
	t.Logf("the other HPA, once its adapter stopped: %s", msg)
	produce(t, topic, map[int32]int{2: 20})
	c.waitReplicas(t, q, own, "w", 6, 60*time.Second) // ceil(55/10): qscale's metrics unaffected
	if h, err := c.kube.AutoscalingV2().HorizontalPodAutoscalers(own).Get(ctxFor(t, 10*time.Second), "qscale-w", metav1.GetOptions{}); err != nil {
		t.Error(err)
	} else if !scalingActive(h) {
		t.Errorf("qscale's HPA is not ScalingActive after the other adapter stopped: %+v", h.Status.Conditions)
	}
	if d, err := c.kube.AppsV1().Deployments(migrating).Get(ctxFor(t, 10*time.Second), "w", metav1.GetOptions{}); err != nil {
		t.Error(err)
	} else if *d.Spec.Replicas != 3 {
		t.Errorf("the other Deployment has %d replicas while its metric fails, want the 3 it had", *d.Spec.Replicas)
	}
	for _, code := range []string{"200", "403", "503"} {
		if v, ok, err := scrapeSample(q.MetricsURL, "qscale_metricsapi_forwarded_requests_total", map[string]string{"code": code}); err != nil || !ok || v == 0 {
			t.Errorf("qscale_metricsapi_forwarded_requests_total{code=%q} = %v (present %t, error %v), want some", code, v, ok, err)
		}
	}
}

// startOtherAdapter builds e2e/othermetrics and runs it as the ServiceAccount
// other/other-metrics, with what every aggregated API server needs (auth delegation and the
// extension-apiserver-authentication ConfigMap), serving otherMetric = otherValue.
func (c *cluster) startOtherAdapter(t *testing.T) *controlplane.OtherMetrics {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "othermetrics")
	build := exec.Command("go", "build", "-o", bin, "./othermetrics") //nolint:gosec // the scenario's own adapter, into its own temporary folder
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building e2e/othermetrics: %v\n%s", err, out)
	}
	kubeconfig := c.delegatingServiceAccount(t, "other", "other-metrics")
	other, err := c.cp.StartOtherMetrics(ctxFor(t, time.Minute), bin, controlplane.OtherMetricsOptions{
		Kubeconfig: kubeconfig, Metric: otherMetric, Value: otherValue,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, c.cp.Tail("othermetrics", 30))
	}
	t.Cleanup(other.Stop)
	return other
}

// qscaleRules are the chart's rules for qscale's work on workloads (its qscale.workloadRules).
var qscaleRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{"apps"}, Resources: []string{"deployments/scale", "statefulsets/scale"}, Verbs: []string{"get", "update"}},
	{APIGroups: []string{"autoscaling"}, Resources: []string{"horizontalpodautoscalers"}, Verbs: []string{"get", "list", "watch", "create", "update", "delete"}},
	{APIGroups: []string{"events.k8s.io", ""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}},
}

// startForwardingQscale runs qscale as the ServiceAccount qscale/qscale with the chart's
// rules and auth delegation, forwarding to other, and points the APIService at it.
func (c *cluster) startForwardingQscale(t *testing.T, other *controlplane.OtherMetrics) *controlplane.Qscale {
	t.Helper()
	kubeconfig := c.delegatingServiceAccount(t, "qscale", "qscale")
	c.clusterRole(t, "qscale", qscaleRules)
	c.waitCan(t, kubeconfig, authorizationv1.ResourceAttributes{Verb: "watch", Group: "apps", Resource: "deployments"})
	return c.qscale(t, "qscale", true, controlplane.QscaleOptions{Kubeconfig: kubeconfig, Args: []string{
		"--forward-external-metrics=" + other.URL, "--forward-ca-file=" + other.CAFile,
	}})
}

// delegatingServiceAccount creates a ServiceAccount that may authenticate and authorise
// callers as an aggregated API server does, waits until RBAC says so, and returns a
// kubeconfig of it.
func (c *cluster) delegatingServiceAccount(t *testing.T, namespace, name string) string {
	t.Helper()
	kubeconfig, err := c.cp.ServiceAccountKubeconfig(ctxFor(t, 30*time.Second), namespace, name)
	if err != nil {
		t.Fatal(err)
	}
	c.bind(t, name+":system:auth-delegator", "system:auth-delegator", namespace, name)
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-auth-reader", Namespace: "kube-system"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "extension-apiserver-authentication-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: name}},
	}
	if _, err := c.kube.RbacV1().RoleBindings("kube-system").Create(ctxFor(t, 10*time.Second), binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.waitCan(t, kubeconfig, authorizationv1.ResourceAttributes{Verb: "get", Resource: "configmaps", Namespace: "kube-system", Name: "extension-apiserver-authentication"})
	c.waitCan(t, kubeconfig, authorizationv1.ResourceAttributes{Verb: "create", Group: "authorization.k8s.io", Resource: "subjectaccessreviews"})
	return kubeconfig
}

// grantQscaleExternalMetrics lets qscale's ServiceAccount read every external metric, as the
// chart does when it forwards.
func (c *cluster) grantQscaleExternalMetrics(t *testing.T) {
	t.Helper()
	c.clusterRole(t, "qscale-forward", []rbacv1.PolicyRule{{APIGroups: []string{"external.metrics.k8s.io"}, Resources: []string{"*"}, Verbs: []string{"get", "list"}}})
}

// clusterRole creates the ClusterRole name with rules and binds qscale's ServiceAccount to it.
func (c *cluster) clusterRole(t *testing.T, name string, rules []rbacv1.PolicyRule) {
	t.Helper()
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}
	if _, err := c.kube.RbacV1().ClusterRoles().Create(ctxFor(t, 10*time.Second), role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.bind(t, name, name, "qscale", "qscale")
}

// bind binds the ClusterRole role to a ServiceAccount, cluster-wide.
func (c *cluster) bind(t *testing.T, name, role, namespace, account string) {
	t.Helper()
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: account}},
	}
	if _, err := c.kube.RbacV1().ClusterRoleBindings().Create(ctxFor(t, 10*time.Second), binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitCan waits until the holder of kubeconfig may do what attrs say: the API server's RBAC
// authorizer learns of new bindings through an informer, a moment after they are written.
func (c *cluster) waitCan(t *testing.T, kubeconfig string, attrs authorizationv1.ResourceAttributes) {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = waitUntil(context.Background(), 30*time.Second, func() (bool, error) {
		review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &attrs}}
		got, err := kube.AuthorizationV1().SelfSubjectAccessReviews().Create(context.Background(), review, metav1.CreateOptions{})
		return err == nil && got.Status.Allowed, nil
	})
	if err != nil {
		t.Fatalf("%s may not %+v: %v", kubeconfig, attrs, err)
	}
}

// otherHPA creates, as KEDA writes one for a ScaledObject, the HPA otherHPA scaling the
// Deployment "w" on otherMetric with an AverageValue target of 10.
func (c *cluster) otherHPA(t *testing.T, ns string) {
	t.Helper()
	one := int32(1)
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: otherHPA, Namespace: ns},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "w"},
			MinReplicas:    &one, MaxReplicas: 10,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{
				Metric: autoscalingv2.MetricIdentifier{Name: otherMetric, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"scaledobject.keda.sh/name": "w"}}},
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: resource.NewQuantity(10, resource.DecimalSI)},
			}}},
		},
	}
	if _, err := c.kube.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(ctxFor(t, 10*time.Second), hpa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitOtherHPAFailing waits until the HPA otherHPA reports that it cannot read its metric
// (ScalingActive false) with a message that holds text, and returns the message.
func (c *cluster) waitOtherHPAFailing(t *testing.T, q *controlplane.Qscale, ns, text string) string {
	t.Helper()
	const timeout = 60 * time.Second
	var last []autoscalingv2.HorizontalPodAutoscalerCondition
	var msg string
	err := waitUntil(context.Background(), timeout, func() (bool, error) {
		h, err := c.kube.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(context.Background(), otherHPA, metav1.GetOptions{})
		if err != nil {
			return false, nil //nolint:nilerr // a transient API error: ask again
		}
		last = h.Status.Conditions
		for _, cond := range last {
			if cond.Type == autoscalingv2.ScalingActive && cond.Status == corev1.ConditionFalse && strings.Contains(cond.Message, text) {
				msg = cond.Message
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("HPA %s/%s: no ScalingActive False with %q after %s; conditions %+v\nqscale log:\n%s",
			ns, otherHPA, text, timeout, last, c.cp.TailFile(q.Log, 30))
	}
	return msg
}

// scalingActive tells whether the HPA reads its metrics and computes a scale from them.
func scalingActive(h *autoscalingv2.HorizontalPodAutoscaler) bool {
	for _, cond := range h.Status.Conditions {
		if cond.Type == autoscalingv2.ScalingActive {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// checkRefusedByQscale reads the other adapter's metric through the API server as a user
// that may not read external metrics: qscale's own authorization refuses it, naming that
// user, before anything is forwarded.
func (c *cluster) checkRefusedByQscale(t *testing.T, ns string) {
	t.Helper()
	cfg := rest.CopyConfig(c.cp.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "nobody", Groups: []string{"system:authenticated"}}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = kube.Discovery().RESTClient().Get().AbsPath("/apis/external.metrics.k8s.io/v1beta1/namespaces", ns, otherMetric).Do(ctxFor(t, 10*time.Second)).Error()
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `User "nobody"`) {
		t.Errorf("a user without rights read %s: %v, want qscale's 403 naming that user", otherMetric, err)
	}
}

var otherRead = regexp.MustCompile(`read ` + otherMetric + ` in namespace \S+ by (.+)$`)

// checkReadOnlyByQscale reads the other adapter's log: it served its metric, and to qscale's
// ServiceAccount alone (never to the HPA controller, whose reads qscale forwarded as itself).
func checkReadOnlyByQscale(t *testing.T, other *controlplane.OtherMetrics) {
	t.Helper()
	b, err := os.ReadFile(other.Log)
	if err != nil {
		t.Fatal(err)
	}
	reads := 0
	for _, line := range strings.Split(string(b), "\n") {
		if m := otherRead.FindStringSubmatch(line); m != nil {
			reads++
			if m[1] != forwardQscaleSA {
				t.Errorf("the other adapter served %s to %s, want qscale's ServiceAccount alone", otherMetric, m[1])
			}
		}
	}
	if reads == 0 {
		t.Errorf("the other adapter logged no read of %s:\n%s", otherMetric, b)
	}
}
