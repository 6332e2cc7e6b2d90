//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/qscale/qscale/e2e/controlplane"
	"github.com/qscale/qscale/internal/shard"
)

const (
	// sharedConnections is how many Kafka clusters the scenario's workloads read, one each:
	// with three replicas, the chance that rendezvous hashing leaves one replica without any
	// is 3·(2/3)⁹, about 8%, and the scenario picks the replica it kills among those that poll.
	sharedConnections = 9
	sharedInterval    = 2 * time.Second
	// pollSlack is how late a poll may come on a busy machine: the poller's timer, the
	// membership's tick (1s) and a scheduling delay.
	pollSlack = 3 * time.Second
)

// TestSharedPolling runs three qscale replicas that share the polling (--peer-address) and
// reads, at each Kafka cluster, when it is polled. In steady state each cluster is polled once
// per interval however many replicas run, and every replica holds every value. Then, one after
// the other: a replica is killed, a replica is cut off from the API server and comes back, and
// the replicas go from three to one and back to three. Throughout, no cluster goes unpolled for
// longer than a lease duration and an interval, none is polled twice within an interval
// outside a handover (and only when a replica joins), and no workload changes its replicas:
// a stale value is neither served nor acted on.
//
// It runs alone, before the parallel scenarios: its bounds are a poll interval and a few
// seconds, and its control plane, three replicas and nine brokers would otherwise add their
// load to that of every other scenario starting at once on 2 cores.
func TestSharedPolling(t *testing.T) {
	s := startSharing(t)
	replicas := watchReplicas(s.c.kube, s.ns, 3, s.workloads()...)
	defer func() {
		if changes := replicas(); len(changes) > 0 {
			t.Errorf("a workload changed its replicas while the polling moved between replicas: %s", strings.Join(changes, "; "))
		}
	}()

	t.Run("steady: each connection polled once per interval, every value on every replica", func(t *testing.T) {
		from := time.Now()
		s.waitFor(t, 5*sharedInterval)
		s.checkPolls(t, from, time.Now(), sharedInterval+pollSlack, false)
		polling := s.polling(t)
		if len(polling) < 2 {
			t.Errorf("replicas polling: %v; want the connections spread over at least two of three", polling)
		}
		s.checkValuesEverywhere(t)
	})

	t.Run("SIGKILL: the others poll the dead replica's connections within a lease duration", func(t *testing.T) {
		victim := s.busiest(t, 1, 2)
		killed := time.Now()
		if err := s.replicas[victim].Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		s.waitMembers(t, 2, leaseDuration+time.Minute)
		s.waitFor(t, 3*sharedInterval)
		gap := s.checkPolls(t, killed.Add(-sharedInterval), time.Now(), leaseDuration+sharedInterval+pollSlack, false)
		t.Logf("longest a connection went unpolled across the SIGKILL: %.1fs", gap.Seconds())
		joined := time.Now()
		s.replace(t, victim)
		s.waitMembers(t, 3, time.Minute)
		s.waitFor(t, 3*sharedInterval)
		s.checkPolls(t, joined, time.Now(), sharedInterval+pollSlack, true)
	})

	t.Run("partition: a replica cut off from the API server stops polling before the others take over", func(t *testing.T) {
		victim := s.busiest(t, 1, 2)
		cut := time.Now()
		s.proxies[victim].cut()
		s.waitFor(t, leaseDuration+3*sharedInterval)
		gap := s.checkPolls(t, cut.Add(-sharedInterval), time.Now(), leaseDuration+sharedInterval+pollSlack, false)
		t.Logf("longest a connection went unpolled across the partition: %.1fs", gap.Seconds())
		healed := time.Now()
		s.proxies[victim].heal()
		s.waitMembers(t, 3, leaseDuration+time.Minute)
		s.waitFor(t, 3*sharedInterval)
		s.checkPolls(t, healed, time.Now(), sharedInterval+pollSlack, true)
		from := time.Now()
		s.waitFor(t, 3*sharedInterval)
		s.checkPolls(t, from, time.Now(), sharedInterval+pollSlack, false)
		s.checkValuesEverywhere(t)
	})

	t.Run("3 to 1 and back: one replica polls everything, then the three share again", func(t *testing.T) {
		left := time.Now()
		for _, i := range []int{1, 2} {
			if err := s.replicas[i].Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
		}
		s.waitMembers(t, 1, time.Minute)
		s.polling(t)
		s.waitFor(t, 3*sharedInterval)
		// The replicas that stop delete their Leases: the one left takes their connections
		// at once, not a lease duration later.
		s.checkPolls(t, left, time.Now(), 2*sharedInterval+pollSlack, false)
		if polling := s.polling(t); !slices.Equal(polling, []int{0}) {
			t.Errorf("replicas polling with one left: %v, want [0]", polling)
		}
		for _, i := range []int{1, 2} {
			<-s.replicas[i].Exited()
		}
		joined := time.Now()
		s.replace(t, 1)
		s.replace(t, 2)
		s.waitMembers(t, 3, time.Minute)
		s.waitFor(t, 3*sharedInterval)
		s.checkPolls(t, joined, time.Now(), 2*sharedInterval+pollSlack, true)
		from := time.Now()
		s.waitFor(t, 5*sharedInterval)
		s.checkPolls(t, from, time.Now(), sharedInterval+pollSlack, false)
		if polling := s.polling(t); len(polling) < 2 {
			t.Errorf("replicas polling after scaling back to three: %v; want at least two", polling)
		}
		s.checkValuesEverywhere(t)
	})
}

// sharing is a control plane of its own with three qscale replicas that share the polling of
// sharedConnections Kafka clusters, one per workload, and a log of the polls each cluster saw.
type sharing struct {
	t        *testing.T // the scenario, whose end stops what the steps start
	c        *cluster
	ns       string
	kafkas   []*kfake.Cluster
	replicas []*controlplane.Qscale
	proxies  []*cutter // replica i reaches the API server through proxies[i]
	started  int       // replicas started so far, for their names

	polls *pollLog
	seen  []int // per replica, its Kafka polls when last counted
}

func startSharing(t *testing.T) *sharing {
	t.Helper()
	s := &sharing{t: t, c: newCluster(t, controlplane.Options{}), polls: newPollLog(sharedConnections)}
	s.ns = s.c.namespace("work")
	s.c.namespace("qscale") // the Leases'
	for i := range sharedConnections {
		k, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "jobs"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(k.Close)
		k.ControlKey(int16(kmsg.OffsetFetch), func(kmsg.Request) (kmsg.Response, error, bool) {
			k.KeepControl()
			s.polls.record(i)
			return nil, nil, false
		})
		s.kafkas = append(s.kafkas, k)
	}
	for range 3 {
		s.replicas = append(s.replicas, nil)
		s.proxies = append(s.proxies, nil)
		s.seen = append(s.seen, 0)
		s.replace(t, len(s.replicas)-1)
		if len(s.replicas) == 1 { // the first leads, writes, and serves the metrics API
			waitLeader(t, s.c.kube, time.Minute)
			if err := s.c.cp.RegisterExternalMetrics(ctxFor(t, time.Minute), "qscale", s.replicas[0].SecurePort); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.waitMembers(t, 3, time.Minute)
	for i, k := range s.kafkas {
		seeds := k.ListenAddrs()
		commitOn(t, adminOf(t, seeds), "workers", "jobs", atStart(4))
		// Four partitions: without allowIdleConsumers, a workload scales to no more
		// replicas than its topic has partitions.
		produceTo(t, seeds, "jobs", map[int32]int{0: 7, 1: 6, 2: 6, 3: 6})
		s.c.deployment(s.ns, fmt.Sprintf("w%d", i), map[string]string{
			"qscale.io/triggers": fmt.Sprintf("- type: kafka\n  name: w%d\n  metadata: {bootstrapServers: %q, consumerGroup: workers, topic: jobs, lagThreshold: '10'}\n",
				i, strings.Join(seeds, ",")),
			"qscale.io/polling-interval": sharedInterval.String(),
			"qscale.io/hpa-behavior":     fastHPA,
		})
	}
	// Every value reaches the HPA through the first replica, whoever polled it.
	for _, name := range s.workloads() {
		s.c.waitReplicas(t, s.replicas[0], s.ns, name, 3, 2*time.Minute) // ceil(25/10)
	}
	return s
}

// replace starts replica i, again if it ran before, reaching the API server through a
// proxy of its own; both last until the scenario ends, not the step.
func (s *sharing) replace(t *testing.T, i int) {
	t.Helper()
	p := newCutter(t, s.t, strings.TrimPrefix(s.c.cp.Config.Host, "https://"))
	user := fmt.Sprintf("qscale-%d", s.started)
	s.started++
	admin, err := s.c.cp.AdminKubeconfig(user)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(admin) //nolint:gosec // a kubeconfig the control plane wrote in its folder
	if err != nil {
		t.Fatal(err)
	}
	proxied := strings.ReplaceAll(string(b), s.c.cp.Config.Host, "https://"+p.addr)
	if proxied == string(b) {
		t.Fatalf("%s does not name the API server %s", admin, s.c.cp.Config.Host)
	}
	kubeconfig := admin + ".proxied"
	if err := os.WriteFile(kubeconfig, []byte(proxied), 0o600); err != nil { //nolint:gosec // beside it
		t.Fatal(err)
	}
	o := controlplane.QscaleOptions{Kubeconfig: kubeconfig, Log: filepath.Join(s.c.cp.Dir, user+".log"),
		Args: []string{"--leader-elect", "--leader-election-namespace", "qscale", "--peer-address", "127.0.0.1"}}
	q, err := s.c.cp.RunQscale(ctxFor(t, time.Minute), qscaleBin(), o)
	if err != nil {
		t.Fatalf("%v\n%s", err, s.c.cp.TailFile(o.Log, 30))
	}
	s.t.Cleanup(q.Stop)
	s.replicas[i] = q
	s.proxies[i] = p
	s.seen[i] = 0
}

func (s *sharing) workloads() []string {
	var names []string
	for i := range sharedConnections {
		names = append(names, fmt.Sprintf("w%d", i))
	}
	return names
}

// waitFor lets d pass while the replicas run: a scenario step that watches for a span.
func (s *sharing) waitFor(t *testing.T, d time.Duration) {
	t.Helper()
	time.Sleep(d) // a span watched, not a wait for a condition
}

// waitMembers waits until n live membership Leases exist, each naming an address and a
// serving certificate.
func (s *sharing) waitMembers(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	var got []string
	err := waitUntil(ctxFor(t, timeout), timeout, func() (bool, error) {
		leases, err := s.c.kube.CoordinationV1().Leases("qscale").List(ctxFor(t, 10*time.Second),
			metav1.ListOptions{LabelSelector: shard.Label + "=true"})
		if err != nil {
			return false, nil
		}
		got = got[:0]
		for _, l := range leases.Items {
			renewed := l.Spec.RenewTime != nil && time.Since(l.Spec.RenewTime.Time) < leaseDuration
			if renewed && l.Annotations[shard.AnnotationAddress] != "" && len(l.Annotations[shard.AnnotationFingerprint]) == 64 {
				got = append(got, l.Name)
			}
		}
		return len(got) == n, nil
	})
	if err != nil {
		t.Fatalf("live members: %v, want %d: %v", got, n, err)
	}
}

// checkPolls checks the polls every cluster saw from from to to: none went unpolled for longer
// than maxGap, and, unless joining (a replica joined then: until every replica sees it, its
// connections may be polled by their old owner too), none was polled twice within half an
// interval. It returns the longest gap.
func (s *sharing) checkPolls(t *testing.T, from, to time.Time, maxGap time.Duration, joining bool) time.Duration {
	t.Helper()
	var longest time.Duration
	twice := 0
	for i, at := range s.polls.spans(from, to) {
		for j := 1; j < len(at); j++ {
			gap := at[j].Sub(at[j-1])
			if gap > maxGap {
				t.Errorf("cluster %d went unpolled for %s from %s, want at most %s", i, gap.Round(time.Millisecond),
					at[j-1].Format(time.StampMilli), maxGap)
			}
			longest = max(longest, gap)
			if j == 1 || j == len(at)-1 || gap >= sharedInterval/2 {
				continue
			}
			twice++
			if !joining {
				t.Errorf("cluster %d polled twice within %s, at %s and %s", i, gap.Round(time.Millisecond),
					at[j-1].Format(time.StampMilli), at[j].Format(time.StampMilli))
			}
		}
	}
	if joining {
		t.Logf("polled twice within half an interval while a replica joined: %d times over %d clusters", twice, sharedConnections)
	}
	return longest
}

// polling returns the replicas, by index, that polled Kafka since it last asked.
func (s *sharing) polling(t *testing.T) []int {
	t.Helper()
	var out []int
	for i, q := range s.replicas {
		if !q.Running() {
			continue
		}
		v, _, err := kafkaPolls(q)
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		if int(v) > s.seen[i] {
			out = append(out, i)
		}
		s.seen[i] = int(v)
	}
	return out
}

// busiest is the replica among candidates that polls the most, over two intervals: one with
// connections to hand over.
func (s *sharing) busiest(t *testing.T, candidates ...int) int {
	t.Helper()
	s.polling(t)
	before := slices.Clone(s.seen)
	s.waitFor(t, 2*sharedInterval)
	s.polling(t)
	best, most := candidates[0], -1
	for _, i := range candidates {
		if n := s.seen[i] - before[i]; n > most {
			best, most = i, n
		}
	}
	if most <= 0 {
		t.Fatalf("none of replicas %v polls anything", candidates)
	}
	return best
}

// checkValuesEverywhere checks that every running replica holds the value of every workload,
// whichever replica polled it.
func (s *sharing) checkValuesEverywhere(t *testing.T) {
	t.Helper()
	for i, q := range s.replicas {
		for _, name := range s.workloads() {
			var v float64
			err := waitUntil(ctxFor(t, 30*time.Second), 30*time.Second, func() (bool, error) {
				var ok bool
				var err error
				v, ok, err = scrapeSample(q.MetricsURL, "qscale_trigger_value", map[string]string{"namespace": s.ns, "trigger": name})
				return err == nil && ok && v == 25, nil
			})
			if err != nil {
				t.Errorf("replica %d holds %v for %s, want 25 (the lag, polled by whichever replica owns it)", i, v, name)
			}
		}
	}
}

// pollLog records when each of a scenario's Kafka clusters was polled (sent an offset fetch).
type pollLog struct {
	mu sync.Mutex
	at [][]time.Time
}

func newPollLog(clusters int) *pollLog { return &pollLog{at: make([][]time.Time, clusters)} }

// record notes a poll of cluster i now.
func (l *pollLog) record(i int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.at[i] = append(l.at[i], time.Now())
}

// spans returns, per cluster, from, then its polls from from to to, then to: consecutive
// entries are the spans it went unpolled.
func (l *pollLog) spans(from, to time.Time) [][]time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([][]time.Time, len(l.at))
	for i, polls := range l.at {
		out[i] = []time.Time{from}
		for _, p := range polls {
			if !p.Before(from) && !p.After(to) {
				out[i] = append(out[i], p)
			}
		}
		out[i] = append(out[i], to)
	}
	return out
}

// kafkaPolls is how many batched Kafka polls q made, and the seconds they took.
func kafkaPolls(q *controlplane.Qscale) (n, seconds float64, err error) {
	kafka := map[string]string{"type": "kafka"}
	if n, _, err = scrapeSample(q.MetricsURL, "qscale_source_poll_duration_seconds_count", kafka); err != nil {
		return 0, 0, err
	}
	seconds, _, err = scrapeSample(q.MetricsURL, "qscale_source_poll_duration_seconds_sum", kafka)
	return n, seconds, err
}

// cutter is a TCP proxy to one address that can cut every connection and refuse new ones
// until healed: a replica cut off from the API server while the others still reach it.
type cutter struct {
	addr string

	mu    sync.Mutex
	down  bool
	conns []net.Conn
}

// newCutter starts a cutter that lasts until owner ends.
func newCutter(t *testing.T, owner testing.TB, target string) *cutter {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	owner.Cleanup(func() { _ = l.Close() })
	p := &cutter{addr: l.Addr().String()}
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			go p.serve(in, target)
		}
	}()
	owner.Cleanup(p.cut)
	return p
}

func (p *cutter) serve(in net.Conn, target string) {
	out, err := net.Dial("tcp", target)
	if err != nil {
		_ = in.Close()
		return
	}
	p.mu.Lock()
	down := p.down
	if !down {
		p.conns = append(p.conns, in, out)
	}
	p.mu.Unlock()
	if down {
		_ = in.Close()
		_ = out.Close()
		return
	}
	go func() {
		_, _ = io.Copy(out, in)
		_ = out.Close()
	}()
	_, _ = io.Copy(in, out)
	_ = in.Close()
}

// cut closes every connection and refuses new ones until heal.
func (p *cutter) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

func (p *cutter) heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}
