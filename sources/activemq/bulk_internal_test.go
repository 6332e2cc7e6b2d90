package activemq

import (
	"errors"
	"slices"
	"testing"
)

func TestReadTarget(t *testing.T) {
	tests := []struct {
		name                string
		path                string
		wantMBean, wantAttr string
	}{
		{name: "KEDA's URL", path: "/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=b,destinationType=Queue,destinationName=q/QueueSize",
			wantMBean: "org.apache.activemq:type=Broker,brokerName=b,destinationType=Queue,destinationName=q", wantAttr: "QueueSize"},
		{name: "escaped slash and exclamation mark", path: "/jolokia/read/x:brokerName=b!!,destinationName=a!/b/QueueSize",
			wantMBean: "x:brokerName=b!,destinationName=a/b", wantAttr: "QueueSize"},
		{name: "an inner path below the attribute", path: "/jolokia/read/java.lang:type=Memory/HeapMemoryUsage/used"},
		{name: "no attribute", path: "/jolokia/read/x:type=Broker"},
		{name: "an empty attribute", path: "/jolokia/read/x:type=Broker/"},
		{name: "no MBean domain", path: "/jolokia/read/type=Broker/QueueSize"},
		{name: "no read", path: "/metrics"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mbean, attr := readTarget(tt.path)
			if mbean != tt.wantMBean || attr != tt.wantAttr {
				t.Errorf("readTarget(%q) = %q, %q; want %q, %q", tt.path, mbean, attr, tt.wantMBean, tt.wantAttr)
			}
		})
	}
}

func TestChunks(t *testing.T) {
	tests := []struct {
		name string
		n    int
		size int
		want []int // chunk lengths
	}{
		{name: "fewer than a chunk", n: 3, size: 500, want: []int{3}},
		{name: "exactly a chunk", n: 500, size: 500, want: []int{500}},
		{name: "one more than a chunk is split evenly", n: 501, size: 500, want: []int{250, 251}},
		{name: "three chunks", n: 1201, size: 500, want: []int{400, 400, 401}},
		{name: "nothing", n: 0, size: 500, want: []int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := make([]int, tt.n)
			for i := range s {
				s[i] = i
			}
			got := chunks(s, tt.size)
			lens := []int{}
			var joined []int
			for _, c := range got {
				lens = append(lens, len(c))
				joined = append(joined, c...)
			}
			if !slices.Equal(lens, tt.want) {
				t.Errorf("chunk lengths = %v, want %v", lens, tt.want)
			}
			if !slices.Equal(joined, s) && tt.n > 0 {
				t.Errorf("chunks do not keep the order of the reads")
			}
		})
	}
}

func TestParseJolokiaBulk(t *testing.T) {
	const policy = `{"error_type":"java.lang.Exception","error":"java.lang.Exception : HTTP method post is not allowed according to the installed security policy","status":403}`
	tests := []struct {
		name        string
		body        string
		n           int
		wantEntries []bulkEntry // errors compared by text
		wantWhole   *jolokiaReply
		wantErr     string
	}{
		{name: "a size, an unknown queue, a probe and an unknown broker, as the agent sends them", n: 4, body: reply(t, "jolokia-bulk.json"),
			wantEntries: []bulkEntry{
				{reply: jolokiaReply{Status: 200, Value: 3}},
				{reply: jolokiaReply{Status: 404}},
				{reply: jolokiaReply{Status: 200}, err: errors.New("reply 3: value is not a number")},
				{reply: jolokiaReply{Status: 404}},
			}},
		{name: "an entry without status", n: 1, body: `[{"value":3}]`, wantEntries: []bulkEntry{{err: errors.New("reply 1: status is missing")}}},
		{name: "an entry that is no object", n: 2, body: `[{"value":3,"status":200},7]`,
			wantEntries: []bulkEntry{{reply: jolokiaReply{Status: 200, Value: 3}}, {err: errors.New("reply 2: the reply is not a JSON object")}}},
		{name: "an entry with a negative value", n: 1, body: `[{"value":-1,"status":200}]`, wantEntries: []bulkEntry{{reply: jolokiaReply{Status: 200}, err: errors.New("reply 1: value is negative")}}},
		{name: "an error entry holding the marker", n: 1, body: `[{"error":"` + marker + `","status":500}]`, wantEntries: []bulkEntry{{reply: jolokiaReply{Status: 500}}}},
		{name: "one reply refusing the whole request", n: 2, body: policy, wantWhole: &jolokiaReply{Status: 403, postRefused: true}},
		{name: "one reply with a value", n: 2, body: `{"value":3,"status":200}`, wantErr: "the bulk reply is one reply, with status 200, to a list of requests"},
		{name: "fewer replies than requests", n: 3, body: `[{"value":3,"status":200}]`, wantErr: "the bulk reply holds 1 replies to 3 requests"},
		{name: "more replies than requests", n: 1, body: `[{"value":3,"status":200},{"value":0,"status":200}]`, wantErr: "the bulk reply holds 2 replies to 1 requests"},
		{name: "null", n: 2, body: `null`, wantErr: "the bulk reply holds 0 replies to 2 requests"},
		{name: "a number", n: 2, body: `7`, wantErr: "the bulk reply is neither a list of replies nor one reply"},
		{name: "HTML", n: 2, body: `<html>` + marker + `</html>`, wantErr: "the bulk reply is not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseJolokiaBulk([]byte(tt.body), make([]bool, tt.n))
			checkReplyErr(t, err, tt.wantErr)
			if (got.whole == nil) != (tt.wantWhole == nil) || got.whole != nil && *got.whole != *tt.wantWhole {
				t.Errorf("whole = %+v, want %+v", got.whole, tt.wantWhole)
			}
			if len(got.entries) != len(tt.wantEntries) {
				t.Fatalf("%d entries, want %d", len(got.entries), len(tt.wantEntries))
			}
			for i, e := range got.entries {
				w := tt.wantEntries[i]
				if e.reply != w.reply || (e.err == nil) != (w.err == nil) || (w.err != nil && e.err.Error() != w.err.Error()) {
					t.Errorf("entry %d = %+v, %v; want %+v, %v", i, e.reply, e.err, w.reply, w.err)
				}
			}
		})
	}
}

func TestRefusesPost(t *testing.T) {
	tests := []struct {
		name string
		body string
		want bool
	}{
		{name: "Jolokia 1's policy refusal", body: `{"error":"java.lang.Exception : HTTP method post is not allowed according to the installed security policy","status":403}`, want: true},
		{name: "in capitals", body: `{"error":"HTTP method POST is not allowed according to the installed security policy","status":403}`, want: true},
		{name: "an attribute the policy forbids", body: `{"error":"java.lang.Exception : Reading attribute QueueSize is forbidden","status":403}`},
		{name: "an Origin the policy forbids", body: `{"error":"java.lang.Exception : Origin http://x is not allowed to call this agent","status":403}`},
		{name: "the words, with another status", body: `{"error":"HTTP method post is not allowed","status":500}`},
		{name: "an error that is no string", body: `{"error":["HTTP method post"],"status":403}`},
		{name: "a value", body: `{"value":1,"status":200}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseJolokia([]byte(tt.body), false)
			if err != nil || got.postRefused != tt.want {
				t.Errorf("postRefused = %v, %v; want %v", got.postRefused, err, tt.want)
			}
		})
	}
}

// In a bulk request, each reply is read as its request asks: counts reads as objects of
// counts, other reads and probes as numbers.
func TestParseJolokiaBulkCounts(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		counts      []bool
		wantEntries []bulkEntry // errors compared by text
	}{
		{name: "counts, an unknown queue and a probe, as the agent sends them", body: reply(t, "jolokia-bulk-counts.json"), counts: []bool{true, true, false},
			wantEntries: []bulkEntry{
				{reply: jolokiaReply{Status: 200, Value: 3, Enqueued: 5, Dequeued: 2}},
				{reply: jolokiaReply{Status: 404}},
				{reply: jolokiaReply{Status: 200}, err: errors.New("reply 3: value is not a number")},
			}},
		{name: "a counts read and a size read", counts: []bool{true, false},
			body:        `[{"value":{"QueueSize":1,"EnqueueCount":4,"DequeueCount":3},"status":200},{"value":1,"status":200}]`,
			wantEntries: []bulkEntry{{reply: jolokiaReply{Status: 200, Value: 1, Enqueued: 4, Dequeued: 3}}, {reply: jolokiaReply{Status: 200, Value: 1}}}},
		{name: "a size where counts were asked for", counts: []bool{true, false},
			body: `[{"value":1,"status":200},{"value":{"QueueSize":1,"EnqueueCount":4,"DequeueCount":3},"status":200}]`,
			wantEntries: []bulkEntry{
				{reply: jolokiaReply{Status: 200}, err: errors.New("reply 1: value is not a JSON object")},
				{reply: jolokiaReply{Status: 200}, err: errors.New("reply 2: value is not a number")},
			}},
		{name: "a count missing", counts: []bool{true},
			body:        `[{"value":{"QueueSize":1,"EnqueueCount":4},"status":200}]`,
			wantEntries: []bulkEntry{{reply: jolokiaReply{Status: 200}, err: errors.New("reply 1: DequeueCount is missing")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseJolokiaBulk([]byte(tt.body), tt.counts)
			if err != nil || got.whole != nil || len(got.entries) != len(tt.wantEntries) {
				t.Fatalf("parseJolokiaBulk = %+v, %v", got, err)
			}
			for i, e := range got.entries {
				w := tt.wantEntries[i]
				if e.reply != w.reply || (e.err == nil) != (w.err == nil) || (w.err != nil && e.err.Error() != w.err.Error()) {
					t.Errorf("entry %d = %+v, %v; want %+v, %v", i, e.reply, e.err, w.reply, w.err)
				}
			}
		})
	}
}
