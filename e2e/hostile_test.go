//go:build e2e

package e2e

import (
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/qscale/qscale/e2e/controlplane"
)

// hostileMarker is broker-supplied text (commit metadata) that must never reach an Event.
const hostileMarker = "HOSTILE-BROKER-TEXT"

// hostileCase is a Kafka cluster that answers truthfully until turned, then one request kind
// with a hostile answer.
type hostileCase struct {
	name string
	// listOffsets rewrites the partitions of a ListOffsets answer; nil leaves it true.
	listOffsets func(parts []kmsg.ListOffsetsResponseTopicPartition, end bool) []kmsg.ListOffsetsResponseTopicPartition
	// extraCommit, when not 0, adds a commit for that partition to OffsetFetch answers.
	extraCommit int32
	// says lists words one of which the SourceError must contain, to say what was wrong.
	says []string
}

var hostileCases = []hostileCase{
	{name: "listoffsets-negative-partition", says: []string{"-1", "negative"},
		listOffsets: func(parts []kmsg.ListOffsetsResponseTopicPartition, _ bool) []kmsg.ListOffsetsResponseTopicPartition {
			extra := kmsg.NewListOffsetsResponseTopicPartition()
			extra.Partition, extra.Offset = -1, 7
			return append(parts, extra)
		}},
	{name: "listoffsets-partition-max-int32", says: []string{"2147483647", "partition 0", "missing"},
		listOffsets: func(parts []kmsg.ListOffsetsResponseTopicPartition, _ bool) []kmsg.ListOffsetsResponseTopicPartition {
			parts[0].Partition = math.MaxInt32 // and partition 0 goes unanswered
			return parts
		}},
	{name: "listoffsets-end-offsets-max-int64", says: []string{"overflow", "9223372036854775807", "too large", "out of range"},
		listOffsets: func(parts []kmsg.ListOffsetsResponseTopicPartition, end bool) []kmsg.ListOffsetsResponseTopicPartition {
			if end && len(parts) >= 2 { // two partitions whose backlogs, summed, overflow
				parts[0].Offset, parts[1].Offset = math.MaxInt64, math.MaxInt64
			}
			return parts
		}},
	{name: "offsetfetch-negative-partition", extraCommit: -1, says: []string{"-1", "negative"}},
	// A partition id that, taken as an index, would make a reader allocate 16 GiB.
	{name: "offsetfetch-partition-max-int32", extraCommit: math.MaxInt32, says: []string{"2147483647"}},
}

// TestHostileKafkaAnswers points workloads at Kafka clusters that, once the workloads have
// scaled out on a true backlog, answer ListOffsets or OffsetFetch with impossible values
// (kfake control hooks): qscale stays up, records a SourceError on each workload naming the
// cluster and what was wrong, with no broker text in it, and keeps its replicas; a workload
// on a sound cluster keeps scaling meanwhile. qscale and the control plane are the test's
// own, since a qscale that fails here could take the shared scenarios down with it.
func TestHostileKafkaAnswers(t *testing.T) {
	t.Parallel()
	c := newCluster(t, controlplane.Options{})
	q := c.qscale(t, "qscale", true, controlplane.QscaleOptions{})
	ns := c.namespace("hostile")
	var turned atomic.Bool
	brokers := map[string]string{}
	names := make([]string, 0, len(hostileCases))
	for _, hc := range hostileCases {
		brokers[hc.name] = hostileCluster(t, hc, &turned)
		c.deployment(ns, hc.name, map[string]string{
			"qscale.io/triggers":         fmt.Sprintf("- type: kafka\n  name: lag\n  metadata: {bootstrapServers: %q, consumerGroup: g, topic: jobs, lagThreshold: '10'}\n", brokers[hc.name]),
			"qscale.io/polling-interval": "1s",
			"qscale.io/hpa-behavior":     fastHPA,
		})
		names = append(names, hc.name)
	}
	good := "hostile-good-" + fmt.Sprint(time.Now().UnixNano())
	kafkaTopic(t, good, 8)
	commitAt(t, good, good, atStart(8))
	c.deployment(ns, "good", map[string]string{
		"qscale.io/triggers": kafkaTrigger("lag", good, good), "qscale.io/polling-interval": "1s", "qscale.io/hpa-behavior": fastHPA,
	})
	for _, name := range names {
		c.waitReplicas(t, q, ns, name, 4, 60*time.Second) // ceil(35/10), on true answers
	}
	pid := q.Cmd.Process.Pid

	held := watchReplicas(c.kube, ns, 4, names...)
	turned.Store(true)
	produce(t, good, map[int32]int{0: 20, 1: 20, 2: 10})
	t.Run("SourceError", func(t *testing.T) {
		for _, hc := range hostileCases {
			t.Run(hc.name, func(t *testing.T) {
				t.Parallel()
				checkSameProcess(t, q, pid)
				msg := c.waitEvent(t, q, ns, hc.name, "SourceError", 30*time.Second)
				checkHostileEvent(t, msg, brokers[hc.name], hc.says)
			})
		}
	})
	c.waitReplicas(t, q, ns, "good", 5, 60*time.Second) // ceil(50/10), while the others fail
	checkSameProcess(t, q, pid)
	if changes := held(); len(changes) > 0 {
		t.Errorf("workloads on hostile clusters lost replicas: %v", changes)
	}
}

func checkHostileEvent(t *testing.T, msg, broker string, says []string) {
	t.Helper()
	t.Logf("SourceError: %s", msg)
	if !strings.Contains(msg, broker) {
		t.Errorf("the Event does not name the cluster %s: %q", broker, msg)
	}
	if !containsAny(strings.ToLower(msg), says) {
		t.Errorf("the Event does not say what was wrong (one of %q): %q", says, msg)
	}
	if strings.Contains(msg, hostileMarker) || !utf8.ValidString(msg) || len(msg) > 1024 {
		t.Errorf("the Event carries broker text, invalid UTF-8 or more than 1 KiB: %q", msg)
	}
}

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// hostileCluster starts a one-broker cluster with topic jobs (4 partitions), group g
// committed at 0 and a backlog of 35, answering as hc says once turned, and returns its
// address. Every OffsetFetch answer, true or not, carries hostileMarker as commit metadata.
func hostileCluster(t *testing.T, hc hostileCase, turned *atomic.Bool) string {
	t.Helper()
	k, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "jobs"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	seeds := k.ListenAddrs()
	a := adminOf(t, seeds)
	commitOn(t, a, "g", "jobs", atStart(4))
	produceTo(t, seeds, "jobs", map[int32]int{0: 9, 1: 9, 2: 9, 3: 8})
	topics, err := a.ListTopics(ctxFor(t, 10*time.Second), "jobs")
	if err != nil {
		t.Fatal(err)
	}
	jobsID := [16]byte(topics["jobs"].ID)
	ends := [4]int64{9, 9, 9, 8}
	k.ControlKey(int16(kmsg.OffsetFetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		k.KeepControl()
		r := req.(*kmsg.OffsetFetchRequest)
		if r.Version < 8 { // qscale asks for many groups at once (v8+)
			return nil, nil, false
		}
		extra := int32(0)
		if turned.Load() {
			extra = hc.extraCommit
		}
		return offsetFetchAnswer(r, jobsID, extra), nil, true
	})
	if hc.listOffsets != nil {
		k.ControlKey(int16(kmsg.ListOffsets), func(req kmsg.Request) (kmsg.Response, error, bool) {
			k.KeepControl()
			if !turned.Load() {
				return nil, nil, false
			}
			return listOffsetsAnswer(req.(*kmsg.ListOffsetsRequest), ends, hc.listOffsets), nil, true
		})
	}
	return strings.Join(seeds, ",")
}

// offsetFetchAnswer answers every group with commits at 0 on jobs' four partitions, as the
// cluster holds them, with hostileMarker as metadata; with extra other than 0, also for
// partition extra.
func offsetFetchAnswer(r *kmsg.OffsetFetchRequest, jobsID [16]byte, extra int32) *kmsg.OffsetFetchResponse {
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	marker := hostileMarker
	for _, g := range r.Groups {
		rg := kmsg.NewOffsetFetchResponseGroup()
		rg.Group = g.Group
		rt := kmsg.NewOffsetFetchResponseGroupTopic()
		rt.Topic, rt.TopicID = "jobs", jobsID
		ids := []int32{0, 1, 2, 3}
		if extra != 0 {
			ids = append(ids, extra)
		}
		for _, id := range ids {
			p := kmsg.NewOffsetFetchResponseGroupTopicPartition()
			p.Partition, p.Offset, p.Metadata = id, 0, &marker
			rt.Partitions = append(rt.Partitions, p)
		}
		rg.Topics = append(rg.Topics, rt)
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

// listOffsetsAnswer answers what the cluster holds (start offsets 0, end offsets ends), then
// lets rewrite spoil each topic's partitions.
func listOffsetsAnswer(r *kmsg.ListOffsetsRequest, ends [4]int64,
	rewrite func([]kmsg.ListOffsetsResponseTopicPartition, bool) []kmsg.ListOffsetsResponseTopicPartition,
) *kmsg.ListOffsetsResponse {
	resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, t := range r.Topics {
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = t.Topic
		end := false
		for _, p := range t.Partitions {
			rp := kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition, rp.Offset = p.Partition, 0
			if p.Timestamp == -1 && p.Partition >= 0 && int(p.Partition) < len(ends) {
				rp.Offset, end = ends[p.Partition], true
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		rt.Partitions = rewrite(rt.Partitions, end)
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
