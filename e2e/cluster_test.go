//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/qscale/qscale/e2e/controlplane"
)

// cluster is a control plane of one scenario's own: for scenarios that stop the API server,
// run qscale replicas of their own or may crash qscale, so that they can run in parallel
// with the scenarios on the shared control plane without disturbing them.
type cluster struct {
	t    testing.TB
	cp   *controlplane.ControlPlane
	kube *kubernetes.Clientset
}

// newCluster starts a control plane for t and stops it when t ends. Its folder, logs
// included, is kept when t fails.
func newCluster(t testing.TB, o controlplane.Options) *cluster {
	t.Helper()
	dir, err := os.MkdirTemp("", "qscale-e2e-"+strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())+"-")
	if err != nil {
		t.Fatal(err)
	}
	o.Dir = dir
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Minute // it may start while other scenarios start theirs
	}
	cp, err := controlplane.Start(ctxFor(t, o.Timeout), o)
	if err != nil {
		t.Fatalf("%v (logs in %s)", err, dir)
	}
	t.Cleanup(func() {
		cp.Stop()
		if t.Failed() {
			t.Logf("logs are in %s", dir)
		} else {
			_ = os.RemoveAll(dir)
		}
	})
	c := &cluster{t: t, cp: cp}
	if c.kube, err = kubernetes.NewForConfig(cp.Config); err != nil {
		t.Fatal(err)
	}
	return c
}

// qscale runs `qscale run` against the cluster, logging to name.log, and stops it when t
// ends; with register, the APIService points at it.
func (c *cluster) qscale(t testing.TB, name string, register bool, o controlplane.QscaleOptions) *controlplane.Qscale {
	t.Helper()
	o.Log = filepath.Join(c.cp.Dir, name+".log")
	q, err := c.cp.RunQscale(ctxFor(t, time.Minute), qscaleBin(), o)
	if err != nil {
		t.Fatalf("%v\n%s", err, c.cp.TailFile(o.Log, 30))
	}
	t.Cleanup(q.Stop)
	if register {
		if err := c.cp.RegisterExternalMetrics(ctxFor(t, time.Minute), "qscale", q.SecurePort); err != nil {
			t.Fatalf("%v\n%s", err, c.cp.TailFile(q.Log, 30))
		}
	}
	return q
}

func (c *cluster) namespace(name string) string {
	c.t.Helper()
	return namespaceIn(c.t, c.kube, name)
}

// deployment creates a Deployment of one replica.
func (c *cluster) deployment(ns, name string, annotations map[string]string) {
	c.t.Helper()
	createDeployment(c.t, c.kube, controlplane.Deployment(ns, name, 1, annotations))
}

// waitReplicas waits until the Deployment's spec.replicas is want, and fails at once if q
// exits meanwhile.
func (c *cluster) waitReplicas(t testing.TB, q *controlplane.Qscale, ns, name string, want int32, timeout time.Duration) {
	t.Helper()
	alive := func() error {
		if !q.Running() {
			return fmt.Errorf("qscale exited (%v)", q.Cmd.ProcessState)
		}
		return nil
	}
	waitReplicasWhile(t, c.kube, alive, func() string { return c.cp.TailFile(q.Log, 30) }, ns, name, want, timeout)
}

// waitEvent waits for an Event with reason on the object and returns its message; it fails
// at once if q exits meanwhile.
func (c *cluster) waitEvent(t testing.TB, q *controlplane.Qscale, ns, object, reason string, timeout time.Duration) string {
	t.Helper()
	var msg string
	var found bool
	var last error // a transient API error is retried, and reported if it is the last word
	err := waitUntil(context.Background(), timeout, func() (bool, error) {
		if !q.Running() {
			return false, fmt.Errorf("qscale exited (%v)", q.Cmd.ProcessState)
		}
		msg, found, last = findEvent(c.kube, ns, object, reason)
		return found, nil
	})
	if err != nil {
		t.Fatalf("no %s Event on %s/%s: %v (last API error: %v)\nqscale log:\n%s", reason, ns, object, err, last, c.cp.TailFile(q.Log, 30))
	}
	return msg
}

// waitHPAMax waits until the HPA's spec.maxReplicas is want.
func (c *cluster) waitHPAMax(t testing.TB, q *controlplane.Qscale, ns, name string, want int32, timeout time.Duration) {
	t.Helper()
	var got int32
	var last error
	err := waitUntil(context.Background(), timeout, func() (bool, error) {
		h, err := c.kube.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(context.Background(), name, metav1.GetOptions{})
		if last = err; err == nil {
			got = h.Spec.MaxReplicas
		}
		return got == want, nil
	})
	if err != nil {
		t.Fatalf("HPA %s/%s: maxReplicas %d, want %d after %s (last error %v)\nqscale log:\n%s",
			ns, name, got, want, timeout, last, c.cp.TailFile(q.Log, 30))
	}
}

// waitMetricValue waits until the metric read through the cluster's API server is want, and
// returns how long that took.
func (c *cluster) waitMetricValue(t testing.TB, q *controlplane.Qscale, ns, metric, workload string, want int64, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var got int64
	var last error
	err := waitUntil(context.Background(), timeout, func() (bool, error) {
		got, last = metricValue(c.cp.Config, ns, metric, workload)
		return last == nil && got == want, nil
	})
	if err != nil {
		t.Fatalf("%s/%s: metric %s through the API server = %d (last error: %v), want %d after %s\nqscale log:\n%s",
			ns, workload, metric, got, last, want, timeout, c.cp.TailFile(q.Log, 30))
	}
	return time.Since(start)
}

// fatalLine matches what a Go program or its loggers write when they give up: a panic, a
// fatal runtime error, a klog fatal line, or a zap record at fatal or panic level.
var fatalLine = regexp.MustCompile(`^panic: |^fatal error: |^F\d{4} |"level":"(fatal|panic|dpanic)"`)

// checkSameProcess fails unless q is still the process pid, running, with no fatal line in
// its log.
func checkSameProcess(t testing.TB, q *controlplane.Qscale, pid int) {
	t.Helper()
	if !q.Running() || q.Cmd.Process.Pid != pid {
		t.Fatalf("qscale (pid %d) is not running: %v\nqscale log:\n%s", pid, q.Cmd.ProcessState, tailOf(q))
	}
	f, err := os.Open(q.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for s.Scan() {
		if fatalLine.MatchString(s.Text()) {
			t.Errorf("qscale logged a fatal error: %s", s.Text())
		}
	}
}

func tailOf(q *controlplane.Qscale) string { return env.cp.TailFile(q.Log, 30) }

// scrapeSample reads one sample from a Prometheus endpoint: the metric name with every
// label given (others may be present too). ok is false when there is none.
func scrapeSample(url, name string, labels map[string]string) (v float64, ok bool, err error) {
	err = eachSample(url, name, labels, func(line string) (bool, error) {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			return true, nil
		}
		v, err = sampleValue(line)
		ok = err == nil
		return false, err
	})
	return v, ok, err
}

// eachSample hands fn, in order, every line of a Prometheus endpoint that begins with prefix
// and has every label given, until fn says to stop or fails.
func eachSample(url, prefix string, labels map[string]string, fn func(line string) (more bool, err error)) error {
	return eachSampleWith(http.DefaultClient, url, prefix, labels, fn)
}

// eachSampleWith is eachSample through client: the API server's endpoint, say, as its admin.
func eachSampleWith(client *http.Client, url, prefix string, labels map[string]string, fn func(line string) (more bool, err error)) error {
	resp, err := client.Get(url) //nolint:noctx // an endpoint on loopback
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for s.Scan() {
		line := s.Text()
		if !strings.HasPrefix(line, prefix) || !hasLabels(line, labels) {
			continue
		}
		if more, err := fn(line); err != nil || !more {
			return err
		}
	}
	return s.Err()
}

// sampleValue is the value of a sample line: what follows its last space.
func sampleValue(line string) (float64, error) {
	return strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
}

func hasLabels(line string, labels map[string]string) bool {
	for k, v := range labels {
		if !strings.Contains(line, fmt.Sprintf("%s=%q", k, v)) {
			return false
		}
	}
	return true
}

// leaderNamespace holds the Leases of the scenarios' qscale replicas
// (--leader-election-namespace).
const leaderNamespace = "qscale"

// leaseHolder returns the holder of qscale's leader election Lease and when it was acquired;
// "" while nobody holds it.
func leaseHolder(kube kubernetes.Interface) (string, time.Time, error) {
	l, err := kube.CoordinationV1().Leases(leaderNamespace).Get(context.Background(), "qscale.io", metav1.GetOptions{})
	if err != nil {
		return "", time.Time{}, err
	}
	var holder string
	if l.Spec.HolderIdentity != nil {
		holder = *l.Spec.HolderIdentity
	}
	var acquired time.Time
	if l.Spec.AcquireTime != nil {
		acquired = l.Spec.AcquireTime.Time
	}
	return holder, acquired, nil
}

// waitLeader waits until someone other than any of not holds the Lease, and returns the holder
// and when it acquired the Lease.
func waitLeader(t testing.TB, kube kubernetes.Interface, timeout time.Duration, not ...string) (string, time.Time) {
	t.Helper()
	var holder string
	var acquired time.Time
	var last error
	err := waitUntil(context.Background(), timeout, func() (bool, error) {
		holder, acquired, last = leaseHolder(kube)
		if last != nil || holder == "" {
			return false, nil
		}
		for _, n := range not {
			if holder == n {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("no new holder of Lease %s/qscale.io after %s: holder %q, last error %v", leaderNamespace, timeout, holder, last)
	}
	return holder, acquired
}
