package controlplane

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

var apiServices = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// RegisterExternalMetrics points the APIService v1beta1.external.metrics.k8s.io at a server on
// localhost:port, through a Service of type ExternalName in namespace (Endpoints refuse
// loopback addresses), and waits until the aggregator reports it Available.
func (cp *ControlPlane) RegisterExternalMetrics(ctx context.Context, namespace string, port int) error {
	if err := cp.PointExternalMetrics(ctx, namespace, port); err != nil {
		return err
	}
	return cp.WaitAPIServiceAvailable(ctx, externalMetrics, 30*time.Second)
}

const externalMetrics = "v1beta1.external.metrics.k8s.io"

// PointExternalMetrics is RegisterExternalMetrics without the wait: it creates the Service and
// the APIService, or points them at port if they exist (a metrics API that moves to another
// replica), and returns at once, as for a server that is not running yet.
func (cp *ControlPlane) PointExternalMetrics(ctx context.Context, namespace string, port int) error {
	kube, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if _, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	ports := []corev1.ServicePort{{Name: "https", Port: int32(port)}} //nolint:gosec // a TCP port
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "qscale", Namespace: namespace},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost", Ports: ports},
	}
	_, err = kube.CoreV1().Services(namespace).Create(ctx, svc, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			got, err := kube.CoreV1().Services(namespace).Get(ctx, "qscale", metav1.GetOptions{})
			if err != nil {
				return err
			}
			got.Spec.Ports = ports
			_, err = kube.CoreV1().Services(namespace).Update(ctx, got, metav1.UpdateOptions{})
			return err
		})
	}
	if err != nil {
		return err
	}
	return cp.applyAPIService(ctx, namespace, port)
}

// applyAPIService creates the APIService for external metrics, or sets its service port.
func (cp *ControlPlane) applyAPIService(ctx context.Context, namespace string, port int) error {
	dyn, err := dynamic.NewForConfig(cp.Config)
	if err != nil {
		return err
	}
	spec := map[string]any{
		"group": "external.metrics.k8s.io", "version": "v1beta1",
		"service":               map[string]any{"namespace": namespace, "name": "qscale", "port": int64(port)},
		"insecureSkipTLSVerify": true,
		"groupPriorityMinimum":  int64(100), "versionPriority": int64(100),
	}
	apiService := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
		"metadata": map[string]any{"name": externalMetrics}, "spec": spec,
	}}
	_, err = dyn.Resource(apiServices).Create(ctx, apiService, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			got, err := dyn.Resource(apiServices).Get(ctx, externalMetrics, metav1.GetOptions{})
			if err != nil {
				return err
			}
			got.Object["spec"] = spec
			_, err = dyn.Resource(apiServices).Update(ctx, got, metav1.UpdateOptions{})
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("writing the APIService: %w", err)
	}
	return nil
}

// WaitAPIServiceAvailable waits until the aggregator reports the APIService name Available:
// it reached the server behind it over TLS, as the APIService's caBundle or
// insecureSkipTLSVerify says, and read its discovery document.
func (cp *ControlPlane) WaitAPIServiceAvailable(ctx context.Context, name string, timeout time.Duration) error {
	dyn, err := dynamic.NewForConfig(cp.Config)
	if err != nil {
		return err
	}
	var last string
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		got, err := dyn.Resource(apiServices).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil //nolint:nilerr // not there yet: keep polling
		}
		conditions, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		for _, c := range conditions {
			m, _ := c.(map[string]any)
			if m["type"] == "Available" {
				if m["status"] == "True" {
					return true, nil
				}
				last = fmt.Sprintf("%v: %v", m["reason"], m["message"])
			}
		}
		return false, nil
	})
	if err != nil && last != "" {
		return fmt.Errorf("APIService %s not available (%s): %w", name, last, err)
	}
	return err
}
