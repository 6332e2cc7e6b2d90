package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/qscale/qscale/e2e/kafkasim"
)

// view samples the cluster and the simulator and prints the live view and the summary.
type view struct {
	kube       kubernetes.Interface
	sim        *kafkasim.Simulator
	metricsURL string

	start                     time.Time
	peakLag                   int64
	peakAge                   time.Duration
	peakReplicas, peakReady   int32
	events                    []string
	lastEvent                 string
	seen                      map[string]bool
	firstTraffic, wake, ready time.Duration // when traffic began; from then to a replica, to a ready one
}

const header = "  time   produce/s     lag   oldest   qscale desired   HPA   replicas   ready   last Event"

func (v *view) run(ctx context.Context, total time.Duration) {
	v.start, v.seen = time.Now(), map[string]bool{}
	fmt.Println(header)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for i := 0; ; i++ {
		now := time.Since(v.start)
		v.sim.SetRate(rate(now.Seconds() / total.Seconds()))
		replicas, ready, hpa := v.workload(ctx)
		v.sim.SetReady(ready)
		s := v.sim.Snapshot()
		v.track(now, s, replicas, ready)
		if newEvent := v.pollEvents(ctx, now); newEvent || i%2 == 0 {
			fmt.Printf("%6s %11.0f %7d %7.0fs %16s %5s %10d %7d   %s\n", elapsed(now), s.Rate, s.Lag, s.OldestAge.Seconds(), v.desired(), hpa, replicas, ready, v.lastEvent)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if i > 0 && i%40 == 0 {
			fmt.Println(header)
		}
	}
}

func (v *view) track(now time.Duration, s kafkasim.Snapshot, replicas, ready int32) {
	v.peakLag = max(v.peakLag, s.Lag)
	v.peakAge = max(v.peakAge, s.OldestAge)
	v.peakReplicas = max(v.peakReplicas, replicas)
	v.peakReady = max(v.peakReady, ready)
	if s.Rate > 0 && v.firstTraffic == 0 {
		v.firstTraffic = now
	}
	if v.firstTraffic > 0 && v.wake == 0 && replicas > 0 {
		v.wake = now - v.firstTraffic
	}
	if v.firstTraffic > 0 && v.ready == 0 && ready > 0 {
		v.ready = now - v.firstTraffic
	}
}

// workload returns the Deployment's replicas (spec) and ready replicas (status), and the
// HPA's desired replicas ("-" when none).
func (v *view) workload(ctx context.Context) (replicas, ready int32, hpa string) {
	if d, err := v.kube.AppsV1().Deployments(demoNamespace).Get(ctx, workload, metav1.GetOptions{}); err == nil {
		replicas, ready = *d.Spec.Replicas, d.Status.ReadyReplicas
	}
	hpa = "-"
	if h, err := v.kube.AutoscalingV2().HorizontalPodAutoscalers(demoNamespace).Get(ctx, "qscale-"+workload, metav1.GetOptions{}); err == nil {
		hpa = strconv.Itoa(int(h.Status.DesiredReplicas))
	}
	return replicas, ready, hpa
}

// desired scrapes qscale_desired_replicas for the workload from qscale's /metrics.
func (v *view) desired() string {
	resp, err := http.Get(v.metricsURL) //nolint:noctx // qscale's own endpoint on loopback
	if err != nil {
		return "?"
	}
	defer func() { _ = resp.Body.Close() }()
	s := bufio.NewScanner(resp.Body)
	for s.Scan() {
		line := s.Text()
		if strings.HasPrefix(line, "qscale_desired_replicas{") && strings.Contains(line, `target="deployment/`+workload+`"`) {
			return line[strings.LastIndex(line, " ")+1:]
		}
	}
	return "-"
}

// pollEvents records Events not seen before and reports whether there was one.
func (v *view) pollEvents(ctx context.Context, now time.Duration) bool {
	list, err := v.kube.EventsV1().Events(demoNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false
	}
	sort.Slice(list.Items, func(i, j int) bool { return eventTime(list.Items[i]).Before(eventTime(list.Items[j])) })
	fresh := false
	for _, e := range list.Items {
		if v.seen[string(e.UID)] || e.Reason == "ScalingReplicaSet" || e.Regarding.Kind == "Pod" || e.Regarding.Kind == "ReplicaSet" {
			continue
		}
		v.seen[string(e.UID)] = true
		kind := e.Regarding.Kind
		if kind == "HorizontalPodAutoscaler" {
			kind = "HPA"
		}
		v.lastEvent = fmt.Sprintf("%s %s: %s", kind, e.Reason, shorten(withoutSelector(e.Note), 64))
		v.events = append(v.events, elapsed(now)+"  "+v.lastEvent)
		fresh = true
	}
	return fresh
}

func eventTime(e eventsv1.Event) time.Time {
	if !e.EventTime.IsZero() {
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

// withoutSelector drops the label selector the HPA prints inside its rescale messages.
func withoutSelector(note string) string {
	start, end := strings.Index(note, "(&LabelSelector"), strings.LastIndex(note, "})")
	if start < 0 || end < start {
		return note
	}
	return note[:start] + note[end+2:]
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func (v *view) summary(w io.Writer) {
	s := v.sim.Snapshot()
	fmt.Fprintf(w, "\nsummary after %s\n", elapsed(time.Since(v.start)))
	fmt.Fprintf(w, "  messages produced %d, consumed %d, left %d\n", s.Produced, s.Consumed, s.Lag)
	fmt.Fprintf(w, "  peak lag %d, oldest message at most %.0fs old, peak replicas %d, peak ready %d, ready now %d\n",
		v.peakLag, v.peakAge.Seconds(), v.peakReplicas, v.peakReady, s.Ready)
	if v.wake > 0 {
		fmt.Fprintf(w, "  from the first message to a replica: %.1fs", v.wake.Seconds())
		if v.ready > 0 {
			fmt.Fprintf(w, ", to a ready one: %.1fs", v.ready.Seconds())
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "  Events on the Deployment and its HPA:")
	for _, e := range v.events {
		fmt.Fprintln(w, "   ", e)
	}
}
