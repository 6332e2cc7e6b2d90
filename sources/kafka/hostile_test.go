package kafka_test

import (
	"encoding/binary"
	"io"
	"math"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/qscale/qscale/sources/internal/sourcetest"
)

// maxPollAlloc bounds what one poll of a hostile broker may allocate: a few hundred KB when
// answers are read as asked; hundreds of MB when a buffer or slice is sized by a number the
// broker chose.
const maxPollAlloc = 64 << 20

// hostileFixture is a topic "orders" of two partitions with 10 records each and a group "g"
// committed at 5 on both: an honest broker makes the value 10. meta is the cluster's honest
// Metadata answer for the topic, for hooks to alter.
type hostileFixture struct {
	tc      *testCluster
	meta    *kmsg.MetadataResponse
	topicID [16]byte
}

func newHostileFixture(t *testing.T) *hostileFixture {
	t.Helper()
	tc := newCluster(t, kfake.SeedTopics(2, "orders"))
	tc.produce(t, "orders", map[int32]int{0: 10, 1: 10})
	tc.commit(t, "g", "orders", map[int32]int64{0: 5, 1: 5})
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(tc.addrs, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("orders")
	req.Topics = append(req.Topics, rt)
	meta, err := req.RequestWith(ctxT(t), cl)
	if err != nil || len(meta.Topics) != 1 || len(meta.Topics[0].Partitions) != 2 {
		t.Fatalf("metadata of the fixture: %v, %+v", err, meta)
	}
	return &hostileFixture{tc: tc, meta: meta, topicID: meta.Topics[0].TopicID}
}

// answer is what a hostile broker sends for a request, built from the fixture.
type answer func(f *hostileFixture, req kmsg.Request) kmsg.Response

// listOffsetsAnswer answers every partition asked for as the fixture would (end offset 10,
// start offset 0), after edit has changed what it likes.
func listOffsetsAnswer(edit func(timestamp int64, p *kmsg.ListOffsetsResponseTopicPartition)) answer {
	return func(_ *hostileFixture, kreq kmsg.Request) kmsg.Response {
		req := kreq.(*kmsg.ListOffsetsRequest)
		resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
		for _, rt := range req.Topics {
			t := kmsg.NewListOffsetsResponseTopic()
			t.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				p := kmsg.NewListOffsetsResponseTopicPartition()
				p.Partition = rp.Partition
				p.Offset = 0
				if rp.Timestamp == -1 {
					p.Offset = 10
				}
				edit(rp.Timestamp, &p)
				t.Partitions = append(t.Partitions, p)
			}
			resp.Topics = append(resp.Topics, t)
		}
		return resp
	}
}

// metadataAnswer answers with the fixture's metadata after edit has changed the topic.
func metadataAnswer(edit func(t *kmsg.MetadataResponseTopic)) answer {
	return func(f *hostileFixture, req kmsg.Request) kmsg.Response {
		resp := *f.meta
		resp.Version = req.GetVersion()
		t := resp.Topics[0]
		t.Partitions = slices.Clone(t.Partitions)
		edit(&t)
		resp.Topics = []kmsg.MetadataResponseTopic{t}
		return &resp
	}
}

// offsetFetchAnswer answers every group asked for with the given commits on "orders".
func offsetFetchAnswer(commits map[int32]int64) answer {
	return func(f *hostileFixture, kreq kmsg.Request) kmsg.Response {
		req := kreq.(*kmsg.OffsetFetchRequest)
		resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
		t := kmsg.NewOffsetFetchResponseGroupTopic()
		t.Topic, t.TopicID = "orders", f.topicID
		for p, at := range commits {
			rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
			rp.Partition, rp.Offset = p, at
			t.Partitions = append(t.Partitions, rp)
		}
		for _, rg := range req.Groups {
			g := kmsg.NewOffsetFetchResponseGroup()
			g.Group = rg.Group
			g.Topics = []kmsg.OffsetFetchResponseGroupTopic{t}
			resp.Groups = append(resp.Groups, g)
		}
		return resp
	}
}

// Every number a broker answers is checked before it is used: a hostile or broken answer is
// an error naming the cluster and what was wrong, never a panic, a huge allocation or a 0.
func TestHostileBrokerAnswers(t *testing.T) {
	tests := []struct {
		name    string
		key     kmsg.Key
		answer  answer
		md      map[string]string // added to the trigger's metadata
		wantErr []string
	}{
		{name: "ListOffsets: a negative partition", key: kmsg.ListOffsets,
			answer: listOffsetsAnswer(func(_ int64, p *kmsg.ListOffsetsResponseTopicPartition) {
				if p.Partition == 0 {
					p.Partition = -1
				}
			}),
			wantErr: []string{`topic "orders"`, "partition -1"}},
		{name: "ListOffsets: partition 2147483647 instead of 1", key: kmsg.ListOffsets,
			answer: listOffsetsAnswer(func(_ int64, p *kmsg.ListOffsetsResponseTopicPartition) {
				if p.Partition == 1 {
					p.Partition = math.MaxInt32
				}
			}),
			wantErr: []string{`topic "orders"`, "partition 2147483647"}},
		{name: "ListOffsets: the topic missing from the answer", key: kmsg.ListOffsets,
			answer: func(_ *hostileFixture, req kmsg.Request) kmsg.Response {
				return req.(*kmsg.ListOffsetsRequest).ResponseKind()
			},
			wantErr: []string{`topic "orders"`, "omits the topic"}},
		{name: "ListOffsets: end offsets of -1", key: kmsg.ListOffsets,
			answer: listOffsetsAnswer(func(ts int64, p *kmsg.ListOffsetsResponseTopicPartition) {
				if ts == -1 {
					p.Offset = -1
				}
			}),
			wantErr: []string{`topic "orders"`, "end offset -1"}},
		{name: "ListOffsets: end offsets of MaxInt64 on two partitions", key: kmsg.ListOffsets,
			answer: listOffsetsAnswer(func(ts int64, p *kmsg.ListOffsetsResponseTopicPartition) {
				if ts == -1 {
					p.Offset = math.MaxInt64
				}
			}),
			wantErr: []string{`topic "orders"`, "overflows"}},
		{name: "ListOffsets: a start offset above the end offset", key: kmsg.ListOffsets,
			answer: listOffsetsAnswer(func(ts int64, p *kmsg.ListOffsetsResponseTopicPartition) {
				if ts == -2 {
					p.Offset = 20
				}
			}),
			wantErr: []string{`topic "orders"`, "start offset 20 above end offset 10"}},
		{name: "Metadata: partition 50,000,000", key: kmsg.Metadata,
			answer: metadataAnswer(func(t *kmsg.MetadataResponseTopic) {
				p := t.Partitions[0]
				p.Partition = 50_000_000
				t.Partitions = append(t.Partitions, p)
			}),
			wantErr: []string{`topic "orders"`, "partition 50000000"}},
		{name: "OffsetFetch: a negative partition", key: kmsg.OffsetFetch,
			answer:  offsetFetchAnswer(map[int32]int64{0: 5, -1: 5}),
			wantErr: []string{`group "g"`, `topic "orders"`, "partition -1"}},
		{name: "OffsetFetch: partition 2147483647", key: kmsg.OffsetFetch,
			answer:  offsetFetchAnswer(map[int32]int64{0: 5, math.MaxInt32: 5}),
			wantErr: []string{`group "g"`, `topic "orders"`, "partition 2147483647"}},
		{name: "OffsetFetch: a committed offset below -1", key: kmsg.OffsetFetch,
			answer:  offsetFetchAnswer(map[int32]int64{0: 5, 1: -7}),
			wantErr: []string{`group "g"`, `topic "orders"`, "committed offset -7"}},
		{name: "OffsetFetch: a negative partition, topic from commits", key: kmsg.OffsetFetch,
			answer:  offsetFetchAnswer(map[int32]int64{-1: 5}),
			md:      map[string]string{"topic": ""},
			wantErr: []string{`group "g"`, `topic "orders"`, "partition -1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newHostileFixture(t)
			f.tc.ControlKey(tt.key.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
				f.tc.KeepControl()
				return tt.answer(f, req), nil, true
			})
			md := map[string]string{"bootstrapServers": f.tc.addrs, "consumerGroup": "g", "topic": "orders"}
			for k, v := range tt.md {
				if v == "" {
					delete(md, k)
				} else {
					md[k] = v
				}
			}
			tr := parse(t, md, nil)
			pool := newPool(t)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			got := pollOnce(t, pool, 5*time.Second, tr)[0]
			runtime.ReadMemStats(&after)
			sourcetest.WantSample(t, got, "", 0, false, append(tt.wantErr, "kafka cluster "+f.tc.addrs)...)
			if grew := after.TotalAlloc - before.TotalAlloc; grew > maxPollAlloc {
				t.Errorf("one poll allocated %d MB", grew>>20)
			}
		})
	}
}

// oversizedBroker returns the address of a loopback server that answers every request with
// the size of a response of size bytes, and then closes the connection.
func oversizedBroker(t *testing.T, size uint32) string {
	t.Helper()
	return sourcetest.Serve(t, func(c net.Conn) {
		var hdr [4]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		if _, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(hdr[:]))); err != nil {
			return
		}
		binary.BigEndian.PutUint32(hdr[:], size)
		_, _ = c.Write(hdr[:])
	})
}

// A broker announcing a response far larger than any answer qscale asks for is refused
// before the client allocates a buffer for it.
func TestOversizedAnswerIsRefused(t *testing.T) {
	addr := oversizedBroker(t, 90<<20)
	tr := parse(t, map[string]string{"bootstrapServers": addr, "consumerGroup": "g", "topic": "orders"}, nil)
	pool := newPool(t)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got := pollOnce(t, pool, 2*time.Second, tr)[0]
	runtime.ReadMemStats(&after)
	sourcetest.WantSample(t, got, "", 0, false, "kafka cluster "+addr)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > maxPollAlloc {
		t.Errorf("one poll allocated %d MB for answers announced at 90 MB", grew>>20)
	}
}
