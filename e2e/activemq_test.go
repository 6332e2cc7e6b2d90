//go:build e2e

package e2e

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/qscale/qscale/internal/activemqtest"
)

// Scenario 9: ActiveMQ queue size on a real broker → the HPA scales each Deployment to
// ceil(size/targetQueueSize); the consumers drain the queue → back down. One Deployment reads
// the queue through Jolokia (KEDA's way), the other through the statistics plugin over STOMP;
// both take their credentials from a Secret.
func TestActiveMQQueueSizeScalesOutAndIn(t *testing.T) {
	t.Parallel()
	broker := activemqtest.New(t)
	ns := namespace(t, "activemq-scale")
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "activemq", Namespace: ns},
		StringData: map[string]string{"username": broker.User, "password": broker.Password},
	}
	if _, err := env.kube.CoreV1().Secrets(ns).Create(ctxFor(t, 5*time.Second), secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	endpoint := map[string]string{
		"jolokia": fmt.Sprintf("managementEndpoint: %q, brokerName: %s", broker.JolokiaAddr, broker.Name),
		"stomp":   fmt.Sprintf("protocol: stomp, stompEndpoint: %q", broker.StompAddr),
	}
	for _, protocol := range []string{"jolokia", "stomp"} {
		deployment(t, ns, protocol+"-workers", 1, map[string]string{
			"qscale.io/triggers": fmt.Sprintf("- type: activemq\n  name: jobs\n  metadata: {%s, destinationName: jobs-%s, targetQueueSize: '10'}\n"+
				"  authenticationRef: {name: activemq}\n", endpoint[protocol], protocol),
			"qscale.io/polling-interval": "1s",
			"qscale.io/hpa-behavior":     fastHPA,
		})
		if err := broker.Send(ctxFor(t, 30*time.Second), "jobs-"+protocol, 35); err != nil {
			t.Fatal(err)
		}
	}
	for _, protocol := range []string{"jolokia", "stomp"} {
		waitReplicas(t, ns, protocol+"-workers", 4, 60*time.Second) // ceil(35/10)
		waitMetric(t, ns, "qscale-jobs", protocol+"-workers", 35, 30*time.Second)
	}
	for _, protocol := range []string{"jolokia", "stomp"} {
		if err := broker.Consume(ctxFor(t, 60*time.Second), "jobs-"+protocol, 35); err != nil {
			t.Fatal(err)
		}
		waitReplicas(t, ns, protocol+"-workers", 1, 60*time.Second)
	}
}
