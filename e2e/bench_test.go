//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/qscale/qscale/e2e/controlplane"
)

// BenchmarkThousandWorkloads creates 1,000 annotated Deployments whose triggers share one
// kfake cluster (each with its own consumer group) and reports, once every one has its HPA and
// its metric: the time from the last Deployment's creation, qscale's resident memory and Go
// heap, and the connections qscale opened to the cluster. Run with -benchtime 1x.
//
// With QSCALE_BENCH_UNANNOTATED=n it first creates n unannotated Deployments per annotated
// one, with realistic pod templates (controlplane.RealisticDeployment) at 0 replicas: the
// workloads of a cluster that qscale watches without scaling them, and what its cache holds
// of them.
func BenchmarkThousandWorkloads(b *testing.B) {
	const workloads = 1000
	ctx := context.Background()
	ns := "thousand"
	if _, err := env.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
		namespace(b, ns)
		kafkaTopic(b, "thousand", 12)
	}
	unannotated := workloads * unannotatedPerWorkload(b)
	createAll(b, unannotated, func(i int) error {
		_, err := env.kube.AppsV1().Deployments(ns).Create(ctx, controlplane.RealisticDeployment(ns, fmt.Sprintf("u%05d", i), 0), metav1.CreateOptions{})
		return err
	})
	b.Cleanup(func() { // the reaction benchmark must not run beside a thousand workloads, or their deletion
		_ = env.kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
		_ = waitUntil(context.Background(), 3*time.Minute, func() (bool, error) {
			_, err := env.kube.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
	})
	connsBefore := env.kafkaConns.Load()
	createAll(b, workloads, func(i int) error {
		d := controlplane.Deployment(ns, fmt.Sprintf("w%04d", i), 1, map[string]string{
			"qscale.io/triggers":         kafkaTrigger("lag", fmt.Sprintf("group-%d", i), "thousand"),
			"qscale.io/polling-interval": "5s",
		})
		_, err := env.kube.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
		return err
	})
	start := time.Now()
	b.ResetTimer()
	err := waitUntil(ctx, 5*time.Minute, func() (bool, error) {
		hpas, err := env.kube.AutoscalingV2().HorizontalPodAutoscalers(ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(hpas.Items) == workloads, nil
	})
	if err != nil {
		b.Fatalf("not every workload got its HPA: %v\n%s", err, tailQscale())
	}
	if err := waitUntil(ctx, time.Minute, func() (bool, error) {
		_, err := metricValue(env.cp.Config, ns, "qscale-lag", fmt.Sprintf("w%04d", workloads-1))
		return err == nil, nil
	}); err != nil {
		b.Fatalf("the last workload's metric is not served: %v", err)
	}
	b.StopTimer()
	b.ReportMetric(time.Since(start).Seconds(), "s-to-all-HPAs")
	b.ReportMetric(float64(statusKiB(b, env.qscale.Process.Pid, "VmRSS"))/1024, "rss-MiB")
	b.ReportMetric(scrape(b, "go_memstats_heap_inuse_bytes")/(1<<20), "heap-MiB")
	b.ReportMetric(float64(env.kafkaConns.Load()-connsBefore), "broker-conns-opened")
	b.ReportMetric(float64(unannotated), "unannotated-deployments")
	b.ReportMetric(0, "ns/op")
}

// unannotatedPerWorkload is $QSCALE_BENCH_UNANNOTATED, 0 when unset.
func unannotatedPerWorkload(b *testing.B) int {
	v := os.Getenv("QSCALE_BENCH_UNANNOTATED")
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		b.Fatalf("QSCALE_BENCH_UNANNOTATED=%q: want a whole number of at least 0", v)
	}
	return n
}

// createAll calls create for 0 … n-1, 16 at a time, and fails on any error.
func createAll(b *testing.B, n int, create func(i int) error) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	errs := make([]error, n) // b.Fatal belongs to the benchmark's own goroutine
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = create(i)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
}

// statusKiB reads a field of /proc/PID/status counted in KiB: VmRSS, RssAnon (the heap, stacks
// and the runtime's own) or RssFile (the binary's pages mapped in).
func statusKiB(b testing.TB, pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), field+":"); ok {
			n, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return n
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// scrape reads one unlabelled metric from qscale's /metrics.
func scrape(b *testing.B, name string) float64 {
	resp, err := http.Get(env.metricsURL) //nolint:noctx // qscale's own endpoint on loopback
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	s := bufio.NewScanner(resp.Body)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), name+" "); ok {
			v, _ := strconv.ParseFloat(rest, 64)
			return v
		}
	}
	b.Fatalf("no %s in /metrics", name)
	return 0
}

// BenchmarkReaction measures, over repeated trials, the time from a backlog appearing to the
// Deployment's spec.replicas changing: 0 → 1 (qscale's own move, through the scale
// subresource) and 1 → N (through the HPA). Polling interval 1s, HPA sync period 1s.
// Run with -benchtime 1x.
func BenchmarkReaction(b *testing.B) {
	const trials = 5
	ns := "reaction"
	namespace(b, ns)
	var wake, scaleOut []time.Duration
	for i := range trials {
		topic, name := fmt.Sprintf("reaction-%d", i), fmt.Sprintf("w%d", i)
		kafkaTopic(b, topic, 8)
		commitAt(b, "rg-"+topic, topic, map[int32]int64{0: 0, 1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0, 7: 0})
		deployment(b, ns, name, 0, map[string]string{
			"qscale.io/triggers":         kafkaTrigger("lag", "rg-"+topic, topic),
			"qscale.io/min-replicas":     "0",
			"qscale.io/polling-interval": "1s",
			"qscale.io/hpa-behavior":     fastHPA,
		})
		// Wait until qscale reads the trigger (its metric answers), so the clock starts with it running.
		if err := waitUntil(context.Background(), 30*time.Second, func() (bool, error) {
			_, err := metricValue(env.cp.Config, ns, "qscale-lag", name)
			return err == nil, nil
		}); err != nil {
			b.Fatalf("trial %d: the metric is never served", i)
		}
		start := time.Now()
		produce(b, topic, map[int32]int{0: 1})
		wake = append(wake, sinceUntil(b, ns, name, start, func(n int32) bool { return n >= 1 }))
		start = time.Now()
		produce(b, topic, map[int32]int{1: 20, 2: 20, 3: 20})
		scaleOut = append(scaleOut, sinceUntil(b, ns, name, start, func(n int32) bool { return n >= 2 }))
	}
	report := func(ds []time.Duration, unit string) {
		slices.Sort(ds)
		b.ReportMetric(ds[len(ds)/2].Seconds(), unit+"-median-s")
		b.ReportMetric(ds[len(ds)-1].Seconds(), unit+"-max-s")
	}
	report(wake, "0to1")
	report(scaleOut, "1toN")
	b.ReportMetric(0, "ns/op")
}

// sinceUntil polls the Deployment every 20ms until cond holds for its spec.replicas and
// returns the time since start.
func sinceUntil(b *testing.B, ns, name string, start time.Time, cond func(int32) bool) time.Duration {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		d, err := env.kube.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil && cond(*d.Spec.Replicas) {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatalf("%s/%s never reached the replicas wanted\n%s", ns, name, tailQscale())
	return 0
}
