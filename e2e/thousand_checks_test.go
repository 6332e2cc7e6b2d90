//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/qscale/qscale/e2e/controlplane"
)

// checkInvalidEvents checks that each invalid workload has no HPA and exactly one Warning
// InvalidScalingConfig Event saying what its kind says, and that no valid one has any.
func checkInvalidEvents(t *testing.T, c *cluster) {
	invalid := map[string]bool{}
	for _, k := range invalidKinds {
		for i := range mixPerKind {
			invalid[k.workload(i)] = true
		}
	}
	// By now qscale has reconciled every workload (the valid ones have their HPAs and
	// metrics), but an Event may still be on its way: wait until each invalid workload has
	// one, for a bounded time, since an Event that never comes cannot be waited for.
	var notes map[string][]string
	var last error
	_ = waitUntil(context.Background(), 10*time.Second, func() (bool, error) {
		notes, last = invalidConfigEvents(c)
		for name := range invalid {
			if len(notes[name]) == 0 {
				return false, nil
			}
		}
		return true, nil
	})
	if last != nil {
		t.Fatal(last)
	}
	hpaOf := hpaTargets(t, c)
	for _, k := range invalidKinds {
		t.Run(k.name, func(t *testing.T) { checkInvalidKind(t, k, notes, hpaOf) })
	}
	for name, got := range notes {
		if !invalid[name] {
			t.Errorf("the valid workload %s got InvalidScalingConfig: %q", name, got)
		}
	}
}

// checkInvalidKind checks that the workloads of kind k have no HPA and one Event each, which
// says what k says.
func checkInvalidKind(t *testing.T, k invalidKind, notes map[string][]string, hpaOf map[string]bool) {
	for i := range mixPerKind {
		name := k.workload(i)
		if hpaOf[name] {
			t.Errorf("%s: qscale created an HPA for a workload that was never valid", name)
		}
		got := notes[name]
		if len(got) != 1 {
			t.Errorf("%s: %d Warning InvalidScalingConfig Events, want 1: %q", name, len(got), got)
			continue
		}
		for _, s := range k.says {
			if !strings.Contains(got[0], s) {
				t.Errorf("%s: the Event does not say %q: %q", name, s, got[0])
			}
		}
	}
}

// hpaTargets returns the names of the workloads that HPAs in the mix namespace scale.
func hpaTargets(t *testing.T, c *cluster) map[string]bool {
	hpas, err := c.kube.AutoscalingV2().HorizontalPodAutoscalers(mixNS).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]bool{}
	for _, h := range hpas.Items {
		targets[h.Spec.ScaleTargetRef.Name] = true
	}
	return targets
}

// invalidConfigEvents maps each object in the mix namespace to the notes of its Warning
// InvalidScalingConfig Events.
func invalidConfigEvents(c *cluster) (map[string][]string, error) {
	evs, err := c.kube.EventsV1().Events(mixNS).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	notes := map[string][]string{}
	for _, e := range evs.Items {
		if e.Reason == "InvalidScalingConfig" && e.Type == corev1.EventTypeWarning {
			notes[e.Regarding.Name] = append(notes[e.Regarding.Name], e.Note)
		}
	}
	return notes, nil
}

// reportMixFigures logs qscale's resident memory and its Kafka poll durations, and checks the
// memory against BENCHMARKS.md's 157 MiB for 1,000 workloads, with room for a busy machine.
func reportMixFigures(t *testing.T, q *controlplane.Qscale) {
	const documentedMiB, allowedMiB = 157, 240
	rss := float64(statusKiB(t, q.Cmd.Process.Pid, "VmRSS")) / 1024
	t.Logf("qscale's resident memory: %.0f MiB (BENCHMARKS.md: %d MiB for 1,000 valid workloads)", rss, documentedMiB)
	if rss > allowedMiB {
		t.Errorf("qscale's resident memory is %.0f MiB, want at most %d MiB", rss, allowedMiB)
	}
	h, err := scrapeHistogram(q.MetricsURL, "qscale_source_poll_duration_seconds", map[string]string{"type": "kafka"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Kafka polls: %d, mean %.1f ms, median ≤ %s, p99 ≤ %s (BENCHMARKS.md, 1,000 groups on one cluster: median 8.2 ms, p99 14.7 ms)",
		h.count, 1000*h.sum/float64(max(h.count, 1)), h.quantile(0.5), h.quantile(0.99))
}

// histogram is a Prometheus histogram as scraped: cumulative counts by upper bound.
type histogram struct {
	bounds []float64
	counts []int
	sum    float64
	count  int
}

// quantile is the upper bound of the bucket that holds quantile q, as a duration.
func (h histogram) quantile(q float64) string {
	for i, c := range h.counts {
		if float64(c) >= q*float64(h.count) {
			if h.bounds[i] > 1e9 {
				return "+Inf"
			}
			return (time.Duration(h.bounds[i] * float64(time.Second))).String()
		}
	}
	return "?"
}

// scrapeHistogram reads the histogram name with the given labels from a Prometheus endpoint.
func scrapeHistogram(url, name string, labels map[string]string) (histogram, error) {
	var h histogram
	err := eachSample(url, name, labels, func(line string) (bool, error) {
		v, _ := sampleValue(line)
		switch {
		case strings.HasPrefix(line, name+"_bucket{"):
			le := line[strings.Index(line, `le="`)+4:]
			bound, err := strconv.ParseFloat(le[:strings.IndexByte(le, '"')], 64)
			if err != nil {
				bound = 1e18 // +Inf
			}
			h.bounds, h.counts = append(h.bounds, bound), append(h.counts, int(v))
		case strings.HasPrefix(line, name+"_sum"):
			h.sum = v
		case strings.HasPrefix(line, name+"_count"):
			h.count = int(v)
		}
		return true, nil
	})
	sort.Sort(byBound(h))
	return h, err
}

type byBound histogram

func (b byBound) Len() int           { return len(b.bounds) }
func (b byBound) Less(i, j int) bool { return b.bounds[i] < b.bounds[j] }
func (b byBound) Swap(i, j int) {
	b.bounds[i], b.bounds[j] = b.bounds[j], b.bounds[i]
	b.counts[i], b.counts[j] = b.counts[j], b.counts[i]
}

// waitStatuses waits until every Deployment of the mix, valid or not, carries the
// qscale.io/status that qscale writes.
func waitStatuses(t *testing.T, c *cluster, q *controlplane.Qscale, timeout time.Duration) {
	t.Helper()
	want := mixValid + mixLong + len(invalidKinds)*mixPerKind
	var have int
	err := waitUntil(context.Background(), timeout, func() (bool, error) {
		list, err := c.kube.AppsV1().Deployments(mixNS).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		have = 0
		for _, d := range list.Items {
			if d.Annotations["qscale.io/status"] != "" {
				have++
			}
		}
		return have >= want, nil
	})
	if err != nil {
		t.Fatalf("%d of %d workloads carry their status after %s: %v\n%s", have, want, timeout, err, tailOf(q))
	}
}

// reportSteadyRequests logs the requests qscale sends to the API server over window, by
// method, once nothing about the workloads changes. Each HPA's metric read costs the metrics
// API a SubjectAccessReview (a POST) whenever its delegated authorization's cache has none for
// that read: the label selector, which names the workload, is part of what is authorized, so
// each workload's reads are cached apart, for 10 s by default.
func reportSteadyRequests(t *testing.T, q *controlplane.Qscale, window time.Duration) {
	t.Helper()
	methods := []string{"GET", "POST", "PUT", "PATCH", "DELETE"}
	count := func() map[string]float64 {
		out := map[string]float64{}
		for _, m := range methods {
			n, err := scrapeSum(q.MetricsURL, "rest_client_requests_total", map[string]string{"method": m})
			if err != nil {
				t.Fatal(err)
			}
			out[m] = n
		}
		return out
	}
	before := count()
	time.Sleep(window) // a measuring window, not a wait for a condition
	after := count()
	var parts []string
	for _, m := range methods {
		parts = append(parts, fmt.Sprintf("%s %.2f/s", m, (after[m]-before[m])/window.Seconds()))
	}
	t.Logf("API requests from qscale once nothing changes, over %s: %s", window, strings.Join(parts, ", "))
}

// scrapeSum adds up every sample of a metric that has the labels given.
func scrapeSum(url, name string, labels map[string]string) (float64, error) {
	sum := 0.0
	err := eachSample(url, name+"{", labels, func(line string) (bool, error) {
		v, err := sampleValue(line)
		sum += v
		return true, err
	})
	return sum, err
}
