//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/qscale/qscale/e2e/controlplane"
)

// rabbitServer is Debian's RabbitMQ server script, which `make brokers` installs. Run
// directly (not through /usr/sbin's wrapper, which switches to the rabbitmq user and its
// data), it starts a node with whatever name, ports and folders the environment gives it.
const rabbitServer = "/usr/lib/rabbitmq/bin/rabbitmq-server"

// TestRabbitMQNodeStopsAndStarts stops a RabbitMQ node under a workload scaled out on its
// queue: qscale records SourceError and the workload keeps its replicas while the node is
// down; once the node is back qscale reads the queue again without a restart
// (SourceRecovered) and scales on it. The node is one of the test's own, so that stopping it
// disturbs no other test.
func TestRabbitMQNodeStopsAndStarts(t *testing.T) {
	t.Parallel()
	node := startRabbitNode(t)
	ns := namespace(t, "rabbitmq-restart")
	publish := func(n int) {
		ch := node.channel(t)
		if _, err := ch.QueueDeclare("jobs", true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			msg := amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(fmt.Sprint(i))} // kept across the restart
			if err := ch.PublishWithContext(ctxFor(t, 5*time.Second), "", "jobs", false, false, msg); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(35)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "rabbitmq", Namespace: ns}, StringData: map[string]string{"host": node.URL}}
	if _, err := env.kube.CoreV1().Secrets(ns).Create(ctxFor(t, 5*time.Second), secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deployment(t, ns, "workers", 1, map[string]string{
		"qscale.io/triggers":         "- type: rabbitmq\n  name: jobs\n  metadata: {queueName: jobs, mode: QueueLength, value: '10'}\n  authenticationRef: {name: rabbitmq}\n",
		"qscale.io/polling-interval": "1s",
		"qscale.io/hpa-behavior":     fastHPA,
	})
	waitReplicas(t, ns, "workers", 4, 60*time.Second) // ceil(35/10)

	held := watchReplicas(env.kube, ns, 4, "workers")
	node.Stop()
	waitEvent(t, ns, "workers", "SourceError", 30*time.Second)
	node.Start()
	// The polls failed meanwhile, so the next one may come as late as the longest back-off
	// (a minute, +10% jitter) after the node is up again: a slow restart lets it grow that far.
	waitEvent(t, ns, "workers", "SourceRecovered", 100*time.Second)
	if changes := held(); len(changes) > 0 {
		t.Errorf("the workload did not keep its 4 replicas while its broker was away: %v", changes)
	}
	// Read again after the restart: ceil(55/10). The metric, too, though the first polls
	// after a reconnection may lag.
	publish(20)
	waitReplicas(t, ns, "workers", 6, 60*time.Second)
	waitMetric(t, ns, "qscale-jobs", "workers", 55, time.Minute)
}

// rabbitNode is a RabbitMQ node of one test's own, on free loopback ports with its data in a
// folder of its own. A test may stop and start it without disturbing the shared broker,
// which other tests, and other users of this machine, rely on meanwhile.
type rabbitNode struct {
	t    testing.TB
	URL  string // amqp://guest:guest@127.0.0.1:port/
	dir  string
	env  []string
	cmd  *exec.Cmd
	done chan struct{}
}

// startRabbitNode starts a node and stops it when t ends. Its ports are free when picked; a
// scenario running meanwhile may take one before the node binds it, and the node is then
// started again on others.
func startRabbitNode(t testing.TB) *rabbitNode {
	t.Helper()
	if _, err := os.Stat(rabbitServer); err != nil {
		t.Fatalf("no RabbitMQ server (make brokers installs it): %v", err)
	}
	for attempt := 1; ; attempt++ {
		n := newRabbitNode(t)
		err := n.start()
		if err == nil {
			t.Cleanup(n.Stop)
			return n
		}
		n.Stop()
		if attempt == 3 || !strings.Contains(err.Error(), "eaddrinuse") {
			t.Fatal(err)
		}
	}
}

// newRabbitNode lays out a node's folder and environment on free ports.
func newRabbitNode(t testing.TB) *rabbitNode {
	t.Helper()
	ports, err := freePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	n := &rabbitNode{t: t, dir: t.TempDir(), URL: fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", ports[0])}
	files := map[string]string{"rabbitmq.conf": "", "enabled_plugins": "[].\n", "rabbitmq-env.conf": ""}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(n.dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(n.dir, "home"), 0o700); err != nil {
		t.Fatal(err)
	}
	n.env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + filepath.Join(n.dir, "home"), // the Erlang cookie
		fmt.Sprintf("RABBITMQ_NODENAME=qscale-e2e-%d@localhost", ports[0]),
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		fmt.Sprintf("RABBITMQ_NODE_PORT=%d", ports[0]),
		fmt.Sprintf("RABBITMQ_DIST_PORT=%d", ports[1]),
		"RABBITMQ_MNESIA_BASE=" + filepath.Join(n.dir, "mnesia"),
		"RABBITMQ_LOG_BASE=" + filepath.Join(n.dir, "log"),
		"RABBITMQ_PID_FILE=" + filepath.Join(n.dir, "rabbitmq.pid"),
		"RABBITMQ_CONFIG_FILE=" + filepath.Join(n.dir, "rabbitmq.conf"),
		"RABBITMQ_ENABLED_PLUGINS_FILE=" + filepath.Join(n.dir, "enabled_plugins"),
		"RABBITMQ_CONF_ENV_FILE=" + filepath.Join(n.dir, "rabbitmq-env.conf"),
	}
	return n
}

// Start starts the node on its ports and data, and waits until it accepts AMQP logins.
func (n *rabbitNode) Start() {
	n.t.Helper()
	if err := n.start(); err != nil {
		n.t.Fatal(err)
	}
}

func (n *rabbitNode) start() error {
	out, err := os.OpenFile(filepath.Join(n.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	n.cmd = exec.Command(rabbitServer)
	n.cmd.Env, n.cmd.Dir = n.env, n.dir
	n.cmd.Stdout, n.cmd.Stderr = out, out
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := n.cmd.Start(); err != nil {
		return err
	}
	n.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		_ = out.Close()
		close(done)
	}(n.cmd, n.done)
	start := time.Now()
	// 10s on an idle machine, a minute on a busy one, and over two minutes while every
	// scenario of make e2e starts at once on 2 cores.
	const boot = 4 * time.Minute
	deadline := start.Add(boot)
	for {
		conn, err := amqp.Dial(n.URL)
		if err == nil {
			_ = conn.Close()
			n.t.Logf("RabbitMQ node up in %.1fs", time.Since(start).Seconds())
			return nil
		}
		select {
		case <-n.done:
			return fmt.Errorf("the RabbitMQ node exited while starting: %v\n%s", n.cmd.ProcessState, env.cp.TailFile(filepath.Join(n.dir, "server.log"), 20))
		case <-time.After(250 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the RabbitMQ node does not accept logins after %s: %w\n%s", boot, err, env.cp.TailFile(filepath.Join(n.dir, "server.log"), 20))
		}
	}
}

// Stop stops the node as its init system would (SIGTERM: the Erlang VM shuts down in order,
// closing every connection) and waits for it.
func (n *rabbitNode) Stop() {
	if n.cmd == nil {
		return
	}
	controlplane.StopProcessGroup(n.cmd.Process.Pid, n.done, 30*time.Second)
	n.cmd = nil
}

// channel opens a channel on a new connection, both closed when the test ends.
func (n *rabbitNode) channel(t testing.TB) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(n.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}
