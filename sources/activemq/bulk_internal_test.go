package activemq

import (
	"fmt"
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
		wantEntries []bulkEntry // errors compared by presence
		wantWhole   *jolokiaReply
		wantErr     string
	}{
		{name: "sizes, an unknown queue and a probe", n: 3,
			body: `[{"value":3,"status":200},{"error_type":"javax.management.InstanceNotFoundException","error":"nosuch","status":404},{"value":"qscale-test","status":200}]`,
			wantEntries: []bulkEntry{
				{reply: jolokiaReply{Status: 200, Value: 3}},
				{reply: jolokiaReply{Status: 404, ErrorType: "javax.management.InstanceNotFoundException", Error: "nosuch"}},
				{reply: jolokiaReply{Status: 200}, err: fmt.Errorf("not a number")},
			}},
		{name: "an entry without status", n: 1, body: `[{"value":3}]`, wantEntries: []bulkEntry{{err: fmt.Errorf("no status")}}},
		{name: "an entry that is no object", n: 1, body: `[7]`, wantEntries: []bulkEntry{{err: fmt.Errorf("not a Jolokia reply")}}},
		{name: "one reply refusing the whole request", n: 2, body: policy,
			wantWhole: &jolokiaReply{Status: 403, ErrorType: "java.lang.Exception", Error: "java.lang.Exception : HTTP method post is not allowed according to the installed security policy"}},
		{name: "one reply with a value", n: 2, body: `{"value":3,"status":200}`, wantErr: "one reply, with status 200"},
		{name: "fewer replies than requests", n: 3, body: `[{"value":3,"status":200}]`, wantErr: "1 replies to 3 requests"},
		{name: "HTML", n: 2, body: `<html>Method Not Allowed</html>`, wantErr: "not a Jolokia bulk reply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseJolokiaBulk([]byte(tt.body), tt.n)
			checkErr(t, err, tt.wantErr)
			if (got.whole == nil) != (tt.wantWhole == nil) || got.whole != nil && *got.whole != *tt.wantWhole {
				t.Errorf("whole = %+v, want %+v", got.whole, tt.wantWhole)
			}
			if len(got.entries) != len(tt.wantEntries) {
				t.Fatalf("%d entries, want %d", len(got.entries), len(tt.wantEntries))
			}
			for i, e := range got.entries {
				w := tt.wantEntries[i]
				if e.reply != w.reply || (e.err == nil) != (w.err == nil) {
					t.Errorf("entry %d = %+v, %v; want %+v, %v", i, e.reply, e.err, w.reply, w.err)
				}
				if w.err != nil {
					checkErr(t, e.err, w.err.Error())
				}
			}
		})
	}
}

func TestRefusesPost(t *testing.T) {
	tests := []struct {
		name  string
		reply jolokiaReply
		want  bool
	}{
		{name: "Jolokia 1's policy refusal", reply: jolokiaReply{Status: 403, Error: "java.lang.Exception : HTTP method post is not allowed according to the installed security policy"}, want: true},
		{name: "in capitals", reply: jolokiaReply{Status: 403, Error: "HTTP method POST is not allowed according to the installed security policy"}, want: true},
		{name: "an attribute the policy forbids", reply: jolokiaReply{Status: 403, Error: "java.lang.Exception : Reading attribute QueueSize is forbidden"}},
		{name: "an Origin the policy forbids", reply: jolokiaReply{Status: 403, Error: "java.lang.Exception : Origin http://x is not allowed to call this agent"}},
		{name: "a value", reply: jolokiaReply{Status: 200, Value: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := refusesPost(tt.reply); got != tt.want {
				t.Errorf("refusesPost = %v, want %v", got, tt.want)
			}
		})
	}
}
