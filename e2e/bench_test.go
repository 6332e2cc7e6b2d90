//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BenchmarkThousandWorkloads creates 1,000 annotated Deployments whose triggers share one
// kfake cluster (each with its own consumer group) and reports, once every one has its HPA and
// its metric: the time from the last Deployment's creation, qscale's resident memory and Go
// heap, and the connections qscale opened to the cluster. Run with -benchtime 1x.
func BenchmarkThousandWorkloads(b *testing.B) {
	const workloads = 1000
	ctx := context.Background()
	ns := "thousand"
	if _, err := env.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
		namespace(b, ns)
		kafkaTopic(b, "thousand", 12)
	}
	connsBefore := env.kafkaConns.Load()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range workloads {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			deployment(b, ns, fmt.Sprintf("w%04d", i), 1, map[string]string{
				"qscale.io/triggers":         kafkaTrigger("lag", fmt.Sprintf("group-%d", i), "thousand"),
				"qscale.io/polling-interval": "5s",
			})
		})
	}
	wg.Wait()
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
	b.ReportMetric(float64(rssKiB(b, env.qscale.Process.Pid))/1024, "rss-MiB")
	b.ReportMetric(scrape(b, "go_memstats_heap_inuse_bytes")/(1<<20), "heap-MiB")
	b.ReportMetric(float64(env.kafkaConns.Load()-connsBefore), "broker-conns-opened")
	b.ReportMetric(0, "ns/op")
}

func rssKiB(b *testing.B, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return n
		}
	}
	b.Fatal("no VmRSS")
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
