//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/qscale/qscale/e2e/controlplane"
	"github.com/qscale/qscale/scaler"
)

const (
	scaleClusters    = 10  // Kafka clusters the workloads read, spread evenly
	scaleUnannotated = 3   // unannotated Deployments per annotated one
	scalePerNS       = 100 // annotated workloads per namespace, each namespace with a Secret
	scaleInterval    = 10 * time.Second
	scaleSteady      = 3 // polling rounds measured in steady state
	scaleReadRate    = 500
	scaleReadSpan    = 10 * time.Second
	scaleReadBurst   = 64 // metric reads in flight at most
)

// BenchmarkScale runs qscale on a control plane of its own with $QSCALE_BENCH_WORKLOADS
// annotated Deployments (default 1,000), each beside 3 unannotated ones with realistic pod
// templates, a Secret per namespace of 100 workloads, and
// triggers spread over 10 Kafka clusters polled every 10 s; once with one replica and once
// with three that share the polling. It reports, per run: the time from the last workload's
// creation to every HPA and the last metric served; the largest replica's RSS and Go heap; the
// API requests per second of every replica together in steady state, and the writes among
// them; the mean time of one batched poll; the broker requests per polling round and the
// connections opened in steady state; metric reads through the API server at 500 per second
// (p50, p99); and, with three replicas, the longest a connection went unpolled when a replica
// that polls is killed. Run with -benchtime 1x.
func BenchmarkScale(b *testing.B) {
	workloads := 1000
	if v := os.Getenv("QSCALE_BENCH_WORKLOADS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("QSCALE_BENCH_WORKLOADS=%q: want a whole number of at least 1", v)
		}
		workloads = n
	}
	for _, replicas := range []int{1, 3} {
		b.Run(fmt.Sprintf("workloads=%d/replicas=%d", workloads, replicas), func(b *testing.B) {
			benchScale(b, workloads, replicas)
		})
	}
}

// brokers are Kafka clusters that count the requests, by kind, and the connections they
// receive, and record when each was sent an offset fetch: a poll.
type brokers struct {
	clusters []*kfake.Cluster
	requests [kmsg.MaxKey + 1]atomic.Int64 // by request key
	conns    atomic.Int64
	polls    *pollLog
}

// counts returns the requests received so far, by request key.
func (k *brokers) counts() []int64 {
	n := make([]int64, len(k.requests))
	for key := range k.requests {
		n[key] = k.requests[key].Load()
	}
	return n
}

// since is the requests received since before (from counts), in all and by kind, as
// "Kind n" pairs of the kinds received.
func (k *brokers) since(before []int64) (int64, string) {
	var all int64
	var kinds []string
	for key, n := range k.counts() {
		if d := n - before[key]; d > 0 {
			all += d
			kinds = append(kinds, fmt.Sprintf("%s %d", kmsg.NameForKey(int16(key)), d))
		}
	}
	return all, strings.Join(kinds, ", ")
}

func startBrokers(b *testing.B, n int) *brokers {
	k := &brokers{polls: newPollLog(n)}
	listen := kfake.ListenFn(func(network, addr string) (net.Listener, error) {
		l, err := net.Listen(network, addr)
		return countingListener{l, &k.conns}, err
	})
	for i := range n {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "jobs"), listen)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.Close)
		for key := int16(0); key <= kmsg.MaxKey; key++ {
			c.ControlKey(key, func(kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				k.requests[key].Add(1)
				if key == int16(kmsg.OffsetFetch) {
					k.polls.record(i)
				}
				return nil, nil, false
			})
		}
		k.clusters = append(k.clusters, c)
	}
	return k
}

// pollsPerCluster is how many offset fetches each cluster received from from to to.
func (k *brokers) pollsPerCluster(from, to time.Time) []int {
	spans := k.polls.spans(from, to)
	n := make([]int, len(spans))
	for i, at := range spans {
		n[i] = len(at) - 2
	}
	return n
}

// handedOver is the longest any cluster waited, from killed until now, for its next poll: the
// time the victim's connections took to reach the other replicas.
func (k *brokers) handedOver(killed time.Time) time.Duration {
	var longest time.Duration
	for _, at := range k.polls.spans(killed, time.Now()) {
		if len(at) == 2 { // not polled since
			return time.Duration(math.MaxInt64)
		}
		longest = max(longest, at[1].Sub(killed))
	}
	return longest
}

// longestGap is the longest any cluster went without a poll from from to to.
func (k *brokers) longestGap(from, to time.Time) time.Duration {
	var longest time.Duration
	for _, at := range k.polls.spans(from, to) {
		for j := 1; j < len(at); j++ {
			longest = max(longest, at[j].Sub(at[j-1]))
		}
	}
	return longest
}

// scaleRun is one run of BenchmarkScale: a control plane, its brokers and qscale's replicas.
type scaleRun struct {
	c          *cluster
	k          *brokers
	qs         []*controlplane.Qscale
	namespaces []string
	workloads  int
	admin      *http.Client // the control plane's admin, for the API server's own /metrics
}

// name is the namespace and name of annotated workload i.
func (r *scaleRun) name(i int) (string, string) {
	return r.namespaces[i/scalePerNS], fmt.Sprintf("w%05d", i)
}

func benchScale(b *testing.B, workloads, replicas int) {
	// The deployment controller creates a ReplicaSet for each of the 4 × workloads
	// Deployments: at its default 20 requests a second, 10,000 workloads would take it 35 min.
	opts := controlplane.Options{Timeout: 3 * time.Minute, ControllerManagerQPS: 100}
	r := &scaleRun{c: newCluster(b, opts), k: startBrokers(b, scaleClusters), workloads: workloads}
	var err error
	if r.admin, err = rest.HTTPClientFor(r.c.cp.Config); err != nil {
		b.Fatal(err)
	}
	r.populate(b)
	r.start(b, replicas)
	ctx := context.Background()
	createAll(b, workloads, func(i int) error {
		ns, w := r.name(i)
		seeds := strings.Join(r.k.clusters[i%scaleClusters].ListenAddrs(), ",")
		d := controlplane.Deployment(ns, w, 1, map[string]string{
			"qscale.io/triggers":         kafkaTriggerOn("lag", seeds, fmt.Sprintf("group-%d", i), "jobs"),
			"qscale.io/polling-interval": scaleInterval.String(),
		})
		_, err := r.c.kube.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
		return err
	})
	start := time.Now()
	b.ResetTimer()
	if err := waitUntil(ctx, 20*time.Minute, func() (bool, error) {
		hpas, err := r.c.kube.AutoscalingV2().HorizontalPodAutoscalers("").List(ctx, metav1.ListOptions{})
		return err == nil && len(hpas.Items) == workloads, nil
	}); err != nil {
		b.Fatalf("not every workload got its HPA: %v\n%s", err, tailOf(r.qs[0]))
	}
	lastNS, last := r.name(workloads - 1)
	if err := waitUntil(ctx, 2*time.Minute, func() (bool, error) {
		_, err := metricValue(r.c.cp.Config, lastNS, "qscale-lag", last)
		return err == nil, nil
	}); err != nil {
		b.Fatalf("the last workload's metric is not served: %v", err)
	}
	b.StopTimer()
	b.ReportMetric(time.Since(start).Seconds(), "s-to-all-HPAs")
	r.steady(b)
	p50, p99, failed := r.metricReads(b)
	b.ReportMetric(p50.Seconds()*1000, "read-p50-ms")
	b.ReportMetric(p99.Seconds()*1000, "read-p99-ms")
	b.ReportMetric(float64(failed), "reads-failed")
	if replicas > 1 {
		gap, handover := r.handover(b)
		b.ReportMetric(gap.Seconds(), "s-longest-unpolled-at-kill")
		b.ReportMetric(handover.Seconds(), "s-kill-to-all-polled")
	}
	b.ReportMetric(0, "ns/op")
}

// populate creates the namespaces, a Secret in each, and scaleUnannotated unannotated
// Deployments per annotated workload to come.
func (r *scaleRun) populate(b *testing.B) {
	ctx := context.Background()
	r.c.namespace("qscale")
	for i := range (r.workloads + scalePerNS - 1) / scalePerNS {
		ns := r.c.namespace(fmt.Sprintf("s%03d", i))
		r.namespaces = append(r.namespaces, ns)
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "broker-credentials", Namespace: ns},
			StringData: map[string]string{"username": "svc", "password": "not-used"}}
		if _, err := r.c.kube.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	createAll(b, r.workloads*scaleUnannotated, func(i int) error {
		ns := r.namespaces[i%len(r.namespaces)]
		_, err := r.c.kube.AppsV1().Deployments(ns).Create(ctx, controlplane.RealisticDeployment(ns, fmt.Sprintf("u%06d", i), 0), metav1.CreateOptions{})
		return err
	})
}

// start runs the replicas, sharing the polling; the first leads and serves the metrics API.
func (r *scaleRun) start(b *testing.B, replicas int) {
	for i := range replicas {
		args := []string{"--leader-elect", "--leader-election-namespace", "qscale", "--peer-address", "127.0.0.1"}
		r.qs = append(r.qs, r.c.qscale(b, fmt.Sprintf("qscale-%d", i), false, controlplane.QscaleOptions{Args: args}))
		if i == 0 {
			waitLeader(b, r.c.kube, time.Minute)
			if err := r.c.cp.RegisterExternalMetrics(ctxFor(b, time.Minute), "qscale", r.qs[0].SecurePort); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// steady waits until qscale's first writes are done (the statuses of new workloads, a tenth of
// a second each) and reports what scaleSteady polling rounds then cost.
func (r *scaleRun) steady(b *testing.B) {
	// Each new workload's status is written once, DefaultStatusQPS a second at most.
	quietBound := 5*time.Minute + time.Duration(r.workloads)*time.Second/scaler.DefaultStatusQPS
	settling := time.Now()
	// Reviews are POSTs that write nothing; qscale's and the API server's counts are read a
	// moment apart, so a review or two may fall between them.
	writes := func() (patches, posts float64) {
		api := apiRequests(b, r.qs)
		return api["PATCH"], api["POST"] - r.reviews(b)
	}
	patches, posts := writes()
	for {
		time.Sleep(5 * time.Second) // a span measured, not a wait for a condition
		nowPatches, nowPosts := writes()
		if nowPatches == patches && math.Abs(nowPosts-posts) < 3 || time.Since(settling) > quietBound {
			break
		}
		patches, posts = nowPatches, nowPosts
	}
	b.ReportMetric(time.Since(settling).Seconds(), "s-to-quiet")
	reviews := r.reviews(b)
	api, apiFrom := apiRequests(b, r.qs), time.Now()
	polls, pollSeconds := pollTotals(b, r.qs)
	cpu := cpuSeconds(b, r.qs)
	// The brokers' counts are read right at the span's ends: scraping the replicas' and the
	// API server's metrics takes seconds at 10,000 workloads, in which the brokers are polled.
	reqs, conns, from := r.k.counts(), r.k.conns.Load(), time.Now()
	span := time.Duration(scaleSteady) * scaleInterval
	time.Sleep(span) // a span measured, not a wait for a condition
	sent, kinds := r.k.since(reqs)
	opened := r.k.conns.Load() - conns
	fetches := r.k.pollsPerCluster(from, from.Add(span))
	api2, apiSpan := apiRequests(b, r.qs), time.Since(apiFrom).Seconds()
	reviews2 := r.reviews(b)
	polls2, pollSeconds2 := pollTotals(b, r.qs)
	cpu2 := cpuSeconds(b, r.qs)
	b.Logf("broker requests in %d rounds: %s; offset fetches per cluster: %v", scaleSteady, kinds, fetches)
	b.ReportMetric(float64(sent)/scaleSteady, "broker-requests/round")
	b.ReportMetric(float64(opened), "broker-conns-opened-steady")
	b.ReportMetric(float64(r.k.conns.Load()), "broker-conns-opened")
	var all float64
	for method, n := range api2 {
		all += n - api[method]
	}
	b.ReportMetric(all/apiSpan, "api-requests/s")
	for _, method := range []string{"GET", "PUT", "PATCH", "POST", "DELETE"} {
		b.ReportMetric((api2[method]-api[method])/apiSpan, "api-"+method+"/s")
	}
	// The reviews are counted from a little before to a little after the requests.
	b.ReportMetric((reviews2-reviews)/apiSpan, "api-reviews/s")
	if polls2 > polls {
		b.ReportMetric((pollSeconds2-pollSeconds)/(polls2-polls), "s/poll")
	}
	var busiest float64
	for i := range cpu {
		busiest = max(busiest, (cpu2[i]-cpu[i])/apiSpan)
	}
	b.ReportMetric(busiest, "max-cpu-cores")
	r.memory(b)
}

// memory reports the resident memory of the largest replica, split into its anonymous pages
// (heap, stacks, the runtime's own) and the binary's pages mapped in, the largest Go heap in
// use, and the largest heap found live by the last garbage collection (the collector lets the
// heap grow to twice that before it collects again, GOGC=100); with
// $QSCALE_BENCH_PROFILES set, it writes each replica's heap profile there.
func (r *scaleRun) memory(b *testing.B) {
	var rss, anon, file, heap, live float64
	dir := os.Getenv("QSCALE_BENCH_PROFILES")
	for i, q := range r.qs {
		if !q.Running() {
			continue
		}
		pid := q.Cmd.Process.Pid
		rss = max(rss, float64(statusKiB(b, pid, "VmRSS"))/1024)
		anon = max(anon, float64(statusKiB(b, pid, "RssAnon"))/1024)
		file = max(file, float64(statusKiB(b, pid, "RssFile"))/1024)
		v, _, err := scrapeSample(q.MetricsURL, "go_memstats_heap_inuse_bytes", nil)
		if err != nil {
			b.Fatal(err)
		}
		heap = max(heap, v/(1<<20))
		if v, _, err = scrapeSample(q.MetricsURL, "go_gc_heap_live_bytes", nil); err != nil {
			b.Fatal(err)
		}
		live = max(live, v/(1<<20))
		if dir != "" {
			path := filepath.Join(dir, fmt.Sprintf("heap-%d-workloads-%d-replicas-%d.pb.gz", r.workloads, len(r.qs), i))
			if err := r.c.cp.HeapProfile(ctxFor(b, time.Minute), q, path); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(rss, "max-rss-MiB")
	b.ReportMetric(anon, "max-rss-anon-MiB")
	b.ReportMetric(file, "max-rss-file-MiB")
	b.ReportMetric(heap, "max-heap-MiB")
	b.ReportMetric(live, "max-heap-live-MiB")
}

// reviews counts the TokenReviews and SubjectAccessReviews the API server has answered. Here
// only qscale asks for them: its metrics API server authenticates and authorizes each read
// through the API server, and caches the answers. They are POSTs among qscale's API
// requests, though they change nothing.
func (r *scaleRun) reviews(b *testing.B) float64 {
	var n float64
	err := eachSampleWith(r.admin, r.c.cp.Config.Host+"/metrics", "apiserver_request_total{", map[string]string{"verb": "POST"},
		func(line string) (bool, error) {
			if !strings.Contains(line, `resource="subjectaccessreviews"`) && !strings.Contains(line, `resource="tokenreviews"`) {
				return true, nil
			}
			v, err := sampleValue(line)
			n += v
			return true, err
		})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// handover kills the replica, other than the leader, that polls the most, and returns the
// longest any cluster then went unpolled and the longest from the kill to a cluster's next
// poll.
func (r *scaleRun) handover(b *testing.B) (gap, handover time.Duration) {
	before, _ := pollTotalsEach(b, r.qs)
	time.Sleep(scaleInterval) // a span measured, not a wait for a condition
	after, _ := pollTotalsEach(b, r.qs)
	victim := -1
	for i := 1; i < len(r.qs); i++ { // not the leader, which serves the metrics API
		if after[i] > before[i] && (victim < 0 || after[i]-before[i] > after[victim]-before[victim]) {
			victim = i
		}
	}
	if victim < 0 {
		b.Fatal("no replica but the leader polls")
	}
	killed := time.Now()
	if err := r.qs[victim].Signal(syscall.SIGKILL); err != nil {
		b.Fatal(err)
	}
	time.Sleep(leaseDuration + 3*scaleInterval) // a span measured, not a wait for a condition
	return r.k.longestGap(killed.Add(-scaleInterval), time.Now()), r.k.handedOver(killed)
}

// kafkaTriggerOn is a kafka trigger on the cluster at seeds with lagThreshold 10.
func kafkaTriggerOn(name, seeds, group, topic string) string {
	return fmt.Sprintf("- type: kafka\n  name: %s\n  metadata: {bootstrapServers: %q, consumerGroup: %s, topic: %s, lagThreshold: '10'}\n",
		name, seeds, group, topic)
}

// apiRequests sums the API requests every running replica's clients made, by method.
func apiRequests(b *testing.B, qs []*controlplane.Qscale) map[string]float64 {
	out := map[string]float64{}
	for _, q := range qs {
		if !q.Running() {
			continue
		}
		err := eachSample(q.MetricsURL, "rest_client_requests_total{", nil, func(line string) (bool, error) {
			v, err := sampleValue(line)
			method, _, _ := strings.Cut(line[strings.Index(line, `method="`)+len(`method="`):], `"`)
			out[method] += v
			return true, err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// pollTotals sums the batched polls of every replica and the seconds they took.
func pollTotals(b *testing.B, qs []*controlplane.Qscale) (polls, seconds float64) {
	each, secs := pollTotalsEach(b, qs)
	for i := range each {
		polls += each[i]
		seconds += secs[i]
	}
	return polls, seconds
}

// cpuSeconds is the CPU time each running replica has used (process_cpu_seconds_total), 0 for
// one that is not running.
func cpuSeconds(b *testing.B, qs []*controlplane.Qscale) []float64 {
	out := make([]float64, len(qs))
	for i, q := range qs {
		if !q.Running() {
			continue
		}
		v, ok, err := scrapeSample(q.MetricsURL, "process_cpu_seconds_total", nil)
		if err != nil || !ok {
			b.Fatalf("process_cpu_seconds_total of replica %d: %v (found: %v)", i, err, ok)
		}
		out[i] = v
	}
	return out
}

func pollTotalsEach(b *testing.B, qs []*controlplane.Qscale) (polls, seconds []float64) {
	for _, q := range qs {
		var n, s float64
		if q.Running() {
			var err error
			if n, s, err = kafkaPolls(q); err != nil {
				b.Fatal(err)
			}
		}
		polls, seconds = append(polls, n), append(seconds, s)
	}
	return polls, seconds
}

// metricReads reads random workloads' metrics through the API server at scaleReadRate per
// second for scaleReadSpan and returns the median and 99th percentile latency, and how many
// reads failed.
func (r *scaleRun) metricReads(b *testing.B) (p50, p99 time.Duration, failed int) {
	cfg := rest.CopyConfig(r.c.cp.Config)
	cfg.QPS, cfg.Burst = -1, 0 // no client-side limit: the rate is the benchmark's
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	var took []time.Duration
	var wg sync.WaitGroup
	sem := make(chan struct{}, scaleReadBurst)
	tick := time.NewTicker(time.Second / scaleReadRate)
	defer tick.Stop()
	end := time.Now().Add(scaleReadSpan)
	for now := range tick.C {
		if now.After(end) {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ns, w := r.name(rand.IntN(r.workloads)) //nolint:gosec // which workload to read
			start := time.Now()
			_, err := metricValueWith(client, cfg.Host, ns, "qscale-lag", w)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				return
			}
			took = append(took, time.Since(start))
		})
	}
	wg.Wait()
	if len(took) == 0 {
		b.Fatal("no metric read succeeded")
	}
	slices.Sort(took)
	return took[len(took)/2], took[len(took)*99/100], failed
}
