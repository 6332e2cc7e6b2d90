//go:build e2e

// Package e2e runs qscale as a process against a real control plane (etcd, kube-apiserver,
// kube-controller-manager with the HPA controller) and real brokers, and checks that a real
// HPA scales real Deployments from queue depth. Run it with `make e2e`.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/qscale/qscale/e2e/controlplane"
)

// env is what every scenario shares: the control plane, a kfake cluster and qscale.
var env struct {
	cp         *controlplane.ControlPlane
	kube       *kubernetes.Clientset
	kafka      *kfake.Cluster
	kafkaConns atomic.Int64 // connections accepted by the kfake cluster
	qscale     *exec.Cmd
	qscaleLog  string
	metricsURL string
}

func TestMain(m *testing.M) {
	flag.Parse()
	parallelByDefault(16)
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "qscale-e2e-")
	if err != nil {
		return 1, err
	}
	cp, err := controlplane.Start(ctx, controlplane.Options{Dir: dir})
	if err != nil {
		return 1, err
	}
	defer cp.Stop()
	env.cp = cp
	if env.kube, err = kubernetes.NewForConfig(cp.Config); err != nil {
		return 1, err
	}
	countConns := kfake.ListenFn(func(network, addr string) (net.Listener, error) {
		l, err := net.Listen(network, addr)
		return countingListener{l, &env.kafkaConns}, err
	})
	if env.kafka, err = kfake.NewCluster(kfake.NumBrokers(3), countConns); err != nil {
		return 1, err
	}
	defer env.kafka.Close()
	q, err := cp.StartQscale(ctx, qscaleBin())
	if err != nil {
		return 1, err
	}
	defer q.Stop()
	env.qscale, env.qscaleLog, env.metricsURL = q.Cmd, q.Log, q.MetricsURL
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "logs are in %s\n", dir)
	} else {
		_ = os.RemoveAll(dir)
	}
	return code, nil
}

// parallelByDefault raises -parallel to n unless it was given. Its default is GOMAXPROCS
// (2 on CI's machines), but scenarios mostly wait (on pollers, the HPA controller, a Lease
// to expire, a broker to boot) rather than compute, and those with control planes of their
// own are meant to run beside the others.
func parallelByDefault(n int) {
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		_ = flag.Set("test.parallel", strconv.Itoa(n))
	}
}

// countingListener counts the connections it accepts in n.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// qscaleBin is the qscale binary under test: $QSCALE_BIN, or the one `make build` writes.
func qscaleBin() string {
	if bin := os.Getenv("QSCALE_BIN"); bin != "" {
		return bin
	}
	return filepath.Join("..", "bin", "qscale")
}

// waitUntil polls cond every 100ms until it holds, fails, or timeout passes.
func waitUntil(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// impersonating returns a client configuration acting as user with groups.
func impersonating(user string, groups ...string) *rest.Config {
	cfg := rest.CopyConfig(env.cp.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return cfg
}
