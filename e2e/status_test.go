//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/qscale/qscale/scaler/status"
)

// qscale writes the state of every workload with triggers on it, those without an HPA (never
// valid, paused) among them, and `qscale status` lists them with the raw values of their
// triggers, as a command and as a kubectl plugin.
func TestStatusCommand(t *testing.T) {
	t.Parallel()
	ns := namespace(t, "status")
	kafkaTopic(t, "status", 4)
	commitAt(t, "sg", "status", atStart(4))
	produce(t, "status", map[int32]int{0: 10, 1: 10, 2: 10})
	deployment(t, ns, "lagging", 1, map[string]string{
		"qscale.io/triggers": kafkaTrigger("lag", "sg", "status"), "qscale.io/polling-interval": "1s", "qscale.io/hpa-behavior": fastHPA,
	})
	deployment(t, ns, "broken", 1, map[string]string{"qscale.io/triggers": "- type: kafka\n  name: lag\n  metadata: {bootstrapServers: 'k:9092'}\n"})
	deployment(t, ns, "held", 4, map[string]string{
		"qscale.io/triggers": kafkaTrigger("lag", "sg", "status"), "qscale.io/polling-interval": "1s", "qscale.io/paused-replicas": "2",
	})

	start := time.Now()
	waitStatus(t, ns, "lagging", func(s *status.Status) bool { return s.Ready && s.Active })
	waitStatus(t, ns, "broken", func(s *status.Status) bool {
		return !s.Ready && strings.Contains(s.Reason, "consumerGroup: is required")
	})
	waitStatus(t, ns, "held", func(s *status.Status) bool { return s.Paused && s.PausedReplicas != nil && *s.PausedReplicas == 2 })
	t.Logf("the three statuses written %s after the workloads were created", time.Since(start).Round(100*time.Millisecond))
	waitReplicas(t, ns, "lagging", 3, 60*time.Second) // ceil(30/10)
	waitReplicas(t, ns, "held", 2, 30*time.Second)

	checkStatusTable(t, ns)
	out, err := exec.Command(qscaleBin(), "status", "-n", ns, "-o", "json", "--kubeconfig", env.cp.Kubeconfig).Output() //nolint:gosec // the binary under test
	if err != nil {
		t.Fatalf("qscale status -o json: %v", err)
	}
	checkStatusJSON(t, out)
	checkStatusPlugin(t, ns)

	// Removing the triggers removes the status.
	annotate(t, ns, "held", map[string]string{"qscale.io/triggers": ""})
	err = waitUntil(context.Background(), 30*time.Second, func() (bool, error) {
		d, err := env.kube.AppsV1().Deployments(ns).Get(context.Background(), "held", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		_, has := d.Annotations[status.Annotation]
		return !has, nil
	})
	if err != nil {
		t.Errorf("the status stayed after the triggers went: %v", err)
	}
}

// checkStatusTable runs qscale status -A -o wide until the HPA and Deployment controllers
// have caught up, and checks the rows of the scenario's namespace.
func checkStatusTable(t *testing.T, ns string) {
	t.Helper()
	wantRows := map[string][]string{
		// NAMESPACE NAME READY ACTIVE FALLBACK PAUSED REPLICAS SINCE TRIGGERS REASON
		"deployment/lagging": {ns, "deployment/lagging", "True", "True", "False", "False", "3/3", "", "lag=30/10", "<none>"},
		"deployment/broken":  {ns, "deployment/broken", "False", "False", "False", "False", "1/1", "", "<none>", "qscale.io/triggers:"},
		"deployment/held":    {ns, "deployment/held", "True", "False", "False", "True (2)", "2/2", "", "lag=<unknown>/10", "<none>"},
	}
	var table string
	err := waitUntil(context.Background(), 60*time.Second, func() (bool, error) {
		out, err := exec.Command(qscaleBin(), "status", "-A", "-o", "wide", "--kubeconfig", env.cp.Kubeconfig).CombinedOutput() //nolint:gosec // the binary under test
		if err != nil {
			return false, err
		}
		table = string(out)
		// The HPA controller fills in its desired count, and the Deployment controller the
		// current one, on their own schedules.
		for name, want := range wantRows {
			if row := rowOf(table, ns, name); row == nil || row[6] != want[6] {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("qscale status -A -o wide: %v\n%s", err, table)
	}
	t.Logf("qscale status -A -o wide, the rows of %s:\n%s", ns, rowsOf(table, ns))
	for name, want := range wantRows {
		if got := rowOf(table, ns, name); !rowMatches(got, want) {
			t.Errorf("%s: row %q, want %q (empty: any)", name, got, want)
		}
	}
}

// rowMatches reports whether the cells match want: equal where want is not empty, REASON
// (the last) by its beginning.
func rowMatches(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i, w := range want {
		switch {
		case w == "", got[i] == w:
		case i == len(want)-1 && strings.HasPrefix(got[i], w):
		default:
			return false
		}
	}
	return true
}

// checkStatusPlugin runs the binary as the kubectl plugin kubectl-qscale, with the kubeconfig
// found through $KUBECONFIG.
func checkStatusPlugin(t *testing.T, ns string) {
	t.Helper()
	plugin := filepath.Join(t.TempDir(), "kubectl-qscale")
	bin, err := filepath.Abs(qscaleBin())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, plugin); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(plugin, "status", "-n", ns) //nolint:gosec // the binary under test, by its plugin name
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.cp.Kubeconfig)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "deployment/lagging") || strings.Contains(string(out), "NAMESPACE") {
		t.Errorf("kubectl-qscale status -n %s: %v\n%s", ns, err, out)
	}
}

// statusItem is one item of qscale status -o json, as the scenario reads it.
type statusItem struct {
	Name     string         `json:"name"`
	Status   *status.Status `json:"status"`
	Replicas struct{ Desired, Current int32 }
	Values   []struct{ Trigger, Value, Target string }
}

// checkStatusJSON checks the -o json output of the scenario's namespace.
func checkStatusJSON(t *testing.T, out []byte) {
	t.Helper()
	var list struct {
		Items []statusItem `json:"items"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("qscale status -o json: %v\n%s", err, out)
	}
	checks := map[string]func(it statusItem) bool{
		"lagging": func(it statusItem) bool {
			return it.Status.Active && len(it.Values) == 1 && it.Values[0].Value == "30" && it.Values[0].Target == "10"
		},
		"broken": func(it statusItem) bool { return !it.Status.Ready && len(it.Status.Triggers) == 0 },
		"held":   func(it statusItem) bool { return it.Status.Paused && it.Replicas.Desired == 2 },
	}
	for _, it := range list.Items {
		check, ok := checks[it.Name]
		if !ok {
			continue
		}
		delete(checks, it.Name)
		if it.Status == nil || !check(it) {
			t.Errorf("%s in JSON: %+v", it.Name, it)
		}
	}
	for name := range checks {
		t.Errorf("no %s in the JSON:\n%s", name, out)
	}
}

// waitStatus waits until the Deployment's status annotation satisfies ok.
func waitStatus(t *testing.T, ns, name string, ok func(*status.Status) bool) {
	t.Helper()
	waitStatusIn(t, env.kube, env.qscaleLog, ns, name, ok)
}

// waitStatusIn waits until the status annotation of a Deployment in the cluster kube, which
// the qscale logging to qscaleLog serves, satisfies ok.
func waitStatusIn(t *testing.T, kube kubernetes.Interface, qscaleLog, ns, name string, ok func(*status.Status) bool) {
	t.Helper()
	var last string
	err := waitUntil(context.Background(), 60*time.Second, func() (bool, error) {
		d, err := kube.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = d.Annotations[status.Annotation]
		s, err := status.Parse(last)
		return err == nil && ok(s), nil
	})
	if err != nil {
		t.Fatalf("%s/%s: status %s: %v\nqscale log:\n%s", ns, name, last, err, env.cp.TailFile(qscaleLog, 30))
	}
}

// rowOf returns the cells of the table's row for namespace and name, nil if there is none.
// Cells are cut where the header's columns start, as the table aligns them: a cell may hold
// spaces (PAUSED "True (2)", REASON).
func rowOf(table, ns, name string) []string {
	lines := strings.Split(table, "\n")
	var starts []int
	for i := 0; i < len(lines[0]); i++ {
		if lines[0][i] != ' ' && (i == 0 || lines[0][i-1] == ' ') {
			starts = append(starts, i)
		}
	}
	for _, line := range lines[1:] {
		var cells []string
		for i, from := range starts {
			to := len(line)
			if i+1 < len(starts) && starts[i+1] < to {
				to = starts[i+1]
			}
			if from >= len(line) {
				cells = append(cells, "")
				continue
			}
			cells = append(cells, strings.TrimSpace(line[from:to]))
		}
		if len(cells) > 1 && cells[0] == ns && cells[1] == name {
			return cells
		}
	}
	return nil
}

// rowsOf returns the table's header and the rows of namespace.
func rowsOf(table, ns string) string {
	var b strings.Builder
	for i, line := range strings.Split(table, "\n") {
		if i == 0 || strings.HasPrefix(line, ns+" ") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}
