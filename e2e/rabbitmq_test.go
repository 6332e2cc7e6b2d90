//go:build e2e

package e2e

import (
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The broker `make brokers` starts, with its default user.
const rabbitURL = "amqp://guest:guest@127.0.0.1:5672/" //nolint:gosec // the local test broker's default user

// Scenario 2: RabbitMQ queue depth on a real broker → the HPA scales the Deployment to
// ceil(depth/value); the queue drains → back down. The broker URL, password included, comes
// from a Secret.
func TestRabbitMQDepthScalesOutAndIn(t *testing.T) {
	t.Parallel()
	ns := namespace(t, "rabbitmq-scale")
	queue := fmt.Sprintf("e2e-orders-%d", time.Now().UnixNano())
	ch := rabbitChannel(t)
	if _, err := ch.QueueDeclare(queue, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = ch.QueueDelete(queue, false, false, false) })
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "rabbitmq", Namespace: ns}, StringData: map[string]string{"host": rabbitURL}}
	if _, err := env.kube.CoreV1().Secrets(ns).Create(ctxFor(t, 5*time.Second), secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deployment(t, ns, "workers", 1, map[string]string{
		"qscale.io/triggers":         fmt.Sprintf("- type: rabbitmq\n  name: orders\n  metadata: {queueName: %s, mode: QueueLength, value: '10'}\n  authenticationRef: {name: rabbitmq}\n", queue),
		"qscale.io/polling-interval": "1s",
		"qscale.io/hpa-behavior":     fastHPA,
	})
	queueScalesOutAndIn(t, ch, queue, ns, "workers")
}

// queueScalesOutAndIn publishes 35 messages to queue and waits for the workload, whose
// trigger "orders" has value 10, to scale to 4 replicas with the metric at 35; then it
// purges the queue and waits for 1 replica.
func queueScalesOutAndIn(t *testing.T, ch *amqp.Channel, queue, ns, workload string) {
	t.Helper()
	for i := range 35 {
		if err := ch.PublishWithContext(ctxFor(t, 5*time.Second), "", queue, false, false, amqp.Publishing{Body: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	waitReplicas(t, ns, workload, 4, 60*time.Second) // ceil(35/10)
	waitMetric(t, ns, "qscale-orders", workload, 35, 30*time.Second)
	if _, err := ch.QueuePurge(queue, false); err != nil {
		t.Fatal(err)
	}
	waitReplicas(t, ns, workload, 1, 60*time.Second)
}

func rabbitChannel(t testing.TB) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(rabbitURL)
	if err != nil {
		t.Fatalf("RabbitMQ is not reachable at %s (make brokers starts it): %v", rabbitURL, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}
