//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

// A KEDA ScaledObject and the TriggerAuthentication it names, converted by `qscale
// import-keda` and merged into the running Deployment as `kubectl patch --patch-file` does,
// scale that Deployment on a real RabbitMQ queue: the broker URL comes from the Secret key
// the TriggerAuthentication mapped, which keeps its KEDA name.
func TestImportKEDAScales(t *testing.T) {
	t.Parallel()
	ns := namespace(t, "import-keda")
	queue := fmt.Sprintf("e2e-imported-%d", time.Now().UnixNano())
	ch := rabbitChannel(t)
	if _, err := ch.QueueDeclare(queue, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = ch.QueueDelete(queue, false, false, false) })
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "keda-rabbitmq-secret", Namespace: ns},
		StringData: map[string]string{"connection-string": rabbitURL}}
	if _, err := env.kube.CoreV1().Secrets(ns).Create(ctxFor(t, 5*time.Second), secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deployment(t, ns, "consumers", 1, nil)

	patch := importKEDA(t, fmt.Sprintf(`apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata: {name: keda-trigger-auth-rabbitmq-conn, namespace: %[1]s}
spec:
  secretTargetRef:
    - parameter: host
      name: keda-rabbitmq-secret
      key: connection-string
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: rabbitmq-scaledobject, namespace: %[1]s}
spec:
  scaleTargetRef: {name: consumers}
  pollingInterval: 1
  minReplicaCount: 1
  maxReplicaCount: 5
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleUp: {stabilizationWindowSeconds: 0, policies: [{type: Percent, value: 1000, periodSeconds: 1}]}
        scaleDown: {stabilizationWindowSeconds: 0, policies: [{type: Percent, value: 100, periodSeconds: 1}]}
  triggers:
    - type: rabbitmq
      name: orders
      metadata: {protocol: amqp, queueName: %[2]s, mode: QueueLength, value: "10"}
      authenticationRef: {name: keda-trigger-auth-rabbitmq-conn}
`, ns, queue))
	if strings.Contains(string(patch), "guest:guest") {
		t.Fatalf("the converted object holds the Secret's value:\n%s", patch)
	}
	if _, err := env.kube.AppsV1().Deployments(ns).Patch(ctxFor(t, 5*time.Second), "consumers", types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("merging the converted annotations: %v\n%s", err, patch)
	}
	queueScalesOutAndIn(t, ch, queue, ns, "consumers")
}

// importKEDA runs `qscale import-keda` on manifests and returns the one object it prints, as
// the JSON of a merge patch.
func importKEDA(t *testing.T, manifests string) []byte {
	t.Helper()
	in := filepath.Join(t.TempDir(), "keda.yaml")
	if err := os.WriteFile(in, []byte(manifests), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(qscaleBin(), "import-keda", "-f", in) //nolint:gosec // the binary under test
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("qscale import-keda: %v\n%s", err, stderr.String())
	}
	patch, err := yaml.YAMLToJSON(stdout.Bytes())
	if err != nil {
		t.Fatalf("the output of qscale import-keda is not one YAML object: %v\n%s", err, stdout.String())
	}
	return patch
}
