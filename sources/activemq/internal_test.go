package activemq

import (
	"embed"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"
)

// marker stands for a secret that a hostile reply carries: no error may repeat it.
const marker = "SECRET-7f3a"

// replies are replies of a real broker (Jolokia's and the statistics plugin's).
//
//go:embed testdata/replies
var replies embed.FS

// reply returns one of replies.
func reply(t testing.TB, name string) string {
	t.Helper()
	b, err := replies.ReadFile("testdata/replies/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// statsMap is a statistics reply of the given entries, each a name and an element.
func statsMap(entries ...string) string {
	var b strings.Builder
	b.WriteString("<map>")
	for i := 0; i+1 < len(entries); i += 2 {
		b.WriteString("<entry><string>" + entries[i] + "</string>" + entries[i+1] + "</entry>")
	}
	b.WriteString("</map>")
	return b.String()
}

func TestParseStats(t *testing.T) {
	named := []string{"brokerName", "<string>b</string>", "destinationName", "<string>queue://q</string>"}
	with := func(kv ...string) string { return statsMap(append(kv, named...)...) }
	tests := []struct {
		name    string
		body    string
		want    destStats
		wantErr string
	}{
		{name: "a queue's statistics, as the broker sends them", body: reply(t, "stats-orders.xml"),
			want: destStats{Broker: "qscale-test", Destination: "queue://orders", Size: 3}},
		{name: "the end of a list, as the broker sends it", body: reply(t, "stats-end.xml"), want: destStats{End: true}},
		{name: "the end of a list, spelt out", body: "\n<map></map>\n", want: destStats{End: true}},
		{name: "an int size", body: with("size", "<int>4</int>"), want: destStats{Broker: "b", Destination: "queue://q", Size: 4}},
		{name: "a large size", body: with("size", "<long>9007199254740993</long>"), want: destStats{Broker: "b", Destination: "queue://q", Size: 9007199254740992}},
		{name: "an entry twice with the same value", body: with("size", "<long>2</long>", "size", "<long>2</long>"), want: destStats{Broker: "b", Destination: "queue://q", Size: 2}},
		{name: "with an XML declaration and comments", body: "<?xml version=\"1.0\"?>\n<!-- stats -->\n" + with("size", "<long>7</long>"),
			want: destStats{Broker: "b", Destination: "queue://q", Size: 7}},
		{name: "entries qscale does not read, whatever they hold", body: with("size", "<long>1</long>", marker, "<string>"+marker+"</string>"),
			want: destStats{Broker: "b", Destination: "queue://q", Size: 1}},

		{name: "size -5", body: with("size", "<long>-5</long>"), wantErr: "size is negative"},
		{name: "size missing", body: with(), wantErr: "size is missing"},
		{name: "size abc", body: with("size", "<long>abc"+marker+"</long>"), wantErr: "size is not a whole number"},
		{name: "size as a string", body: with("size", "<string>5</string>"), wantErr: "size is not a <long> or an <int>"},
		{name: "size as a double", body: with("size", "<double>NaN</double>"), wantErr: "size is not a <long> or an <int>"},
		{name: "size beyond a long", body: with("size", "<long>9223372036854775808</long>"), wantErr: "size is too large"},
		{name: "size below a long", body: with("size", "<long>-9223372036854775809</long>"), wantErr: "size is negative"},
		{name: "size twice, disagreeing", body: with("size", "<long>5</long>", "size", "<long>0</long>"), wantErr: "size appears twice with different values"},
		{name: "no brokerName", body: statsMap("size", "<long>1</long>", "destinationName", "<string>queue://q</string>"), wantErr: "brokerName is missing"},
		{name: "destinationName that is no string", body: statsMap("size", "<long>1</long>", "brokerName", "<string>b</string>", "destinationName", "<long>1</long>"),
			wantErr: "destinationName is not a <string>"},
		{name: "an entry without a value", body: "<map><entry><string>size</string></entry></map>", wantErr: "the statistics reply has an entry that is not one <string> name and one value"},
		{name: "an entry with two values", body: "<map><entry><string>size</string><long>1</long><long>2</long></entry></map>", wantErr: "has an entry that is not one <string> name and one value"},
		{name: "an entry whose name is no string", body: "<map><entry><long>1</long><long>2</long></entry></map>", wantErr: "has an entry that is not one <string> name and one value"},
		{name: "a value that holds elements", body: "<map><entry><string>size</string><list><long>2</long></list></entry></map>", wantErr: "has an entry that is not"},
		{name: "an element other than entry", body: "<map><" + marker + "/></map>", wantErr: "has an entry that is not"},
		{name: "cut short", body: "<map><entry><string>size</string><long>3</long>", wantErr: "the statistics reply is not a jms-map-xml map"},
		{name: "jms-map-json instead", body: `{"map":{}}`, wantErr: "the statistics reply is not a jms-map-xml map"},
		{name: "another document", body: "<list/>", wantErr: "the statistics reply is not a jms-map-xml map"},
		{name: "an unknown entity", body: "<map><entry><string>&" + marker + ";</string><long>1</long></entry></map>", wantErr: "has an entry that is not"},
		{name: "nothing", body: "", wantErr: "the statistics reply is not a jms-map-xml map"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStats([]byte(tt.body), false)
			checkReplyErr(t, err, tt.wantErr)
			if got != tt.want {
				t.Errorf("parseStats = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseStatsCounts(t *testing.T) {
	named := []string{"size", "<long>3</long>", "brokerName", "<string>b</string>", "destinationName", "<string>queue://q</string>"}
	with := func(kv ...string) string { return statsMap(append(kv, named...)...) }
	sized := destStats{Broker: "b", Destination: "queue://q", Size: 3}
	tests := []struct {
		name    string
		body    string
		want    destStats
		wantErr string // of the counts
	}{
		{name: "a queue's statistics, as the broker sends them", body: reply(t, "stats-orders.xml"),
			want: destStats{Broker: "qscale-test", Destination: "queue://orders", Size: 3, Enqueued: 3}},
		{name: "the end of a list", body: reply(t, "stats-end.xml"), want: destStats{End: true}},
		{name: "int counts", body: with("enqueueCount", "<int>9</int>", "dequeueCount", "<int>6</int>"),
			want: destStats{Broker: "b", Destination: "queue://q", Size: 3, Enqueued: 9, Dequeued: 6}},
		{name: "enqueueCount missing", body: with("dequeueCount", "<long>6</long>"), want: sized, wantErr: "enqueueCount is missing"},
		{name: "dequeueCount missing", body: with("enqueueCount", "<long>6</long>"), want: sized, wantErr: "dequeueCount is missing"},
		{name: "enqueueCount negative", body: with("enqueueCount", "<long>-1</long>", "dequeueCount", "<long>0</long>"), want: sized, wantErr: "enqueueCount is negative"},
		{name: "dequeueCount as a string", body: with("enqueueCount", "<long>1</long>", "dequeueCount", "<string>"+marker+"</string>"), want: sized,
			wantErr: "dequeueCount is not a <long> or an <int>"},
		{name: "dequeueCount beyond a long", body: with("enqueueCount", "<long>1</long>", "dequeueCount", "<long>9223372036854775808</long>"), want: sized,
			wantErr: "dequeueCount is too large"},
		{name: "enqueueCount twice, disagreeing", body: with("enqueueCount", "<long>1</long>", "enqueueCount", "<long>2</long>", "dequeueCount", "<long>0</long>"), want: sized,
			wantErr: "enqueueCount appears twice with different values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStats([]byte(tt.body), true)
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			// Bad counts leave the rest of the reply usable.
			checkReplyErr(t, got.countsErr, tt.wantErr)
			if !got.sameFigures(tt.want) {
				t.Errorf("parseStats = %+v, want %+v", got, tt.want)
			}
		})
	}
	t.Run("counts are not read unless asked for", func(t *testing.T) {
		got, err := parseStats([]byte(with("enqueueCount", "<string>"+marker+"</string>")), false)
		if err != nil || got != (destStats{Broker: "b", Destination: "queue://q", Size: 3}) {
			t.Errorf("parseStats = %+v, %v", got, err)
		}
	})
}

func TestParseJolokiaCounts(t *testing.T) {
	value := func(v string) string { return `{"value":` + v + `,"status":200}` }
	tests := []struct {
		name    string
		body    string
		want    jolokiaReply
		wantErr string
	}{
		{name: "the counts, as the agent sends them", body: reply(t, "jolokia-counts.json"), want: jolokiaReply{Status: 200, Value: 3, Enqueued: 5, Dequeued: 2}},
		{name: "an unknown queue, as the agent sends it", body: reply(t, "jolokia-missing.json"), want: jolokiaReply{Status: 404}},
		{name: "in another order, with another member", body: value(`{"DequeueCount":0,"x":"` + marker + `","EnqueueCount":7,"QueueSize":7}`),
			want: jolokiaReply{Status: 200, Value: 7, Enqueued: 7}},
		{name: "a plain number", body: value(`3`), want: jolokiaReply{Status: 200}, wantErr: "value is not a JSON object"},
		{name: "null", body: value(`null`), want: jolokiaReply{Status: 200}, wantErr: "value is null"},
		{name: "no value", body: `{"status":200}`, want: jolokiaReply{Status: 200}, wantErr: "value is missing"},
		{name: "EnqueueCount missing", body: value(`{"QueueSize":1,"DequeueCount":0}`), want: jolokiaReply{Status: 200}, wantErr: "EnqueueCount is missing"},
		{name: "DequeueCount null", body: value(`{"QueueSize":1,"EnqueueCount":1,"DequeueCount":null}`), want: jolokiaReply{Status: 200}, wantErr: "DequeueCount is null"},
		{name: "QueueSize as a string", body: value(`{"QueueSize":"` + marker + `","EnqueueCount":1,"DequeueCount":0}`), want: jolokiaReply{Status: 200},
			wantErr: "QueueSize is not a number"},
		{name: "a negative DequeueCount", body: value(`{"QueueSize":1,"EnqueueCount":1,"DequeueCount":-4}`), want: jolokiaReply{Status: 200},
			wantErr: "DequeueCount is negative"},
		{name: "EnqueueCount beyond a long", body: value(`{"QueueSize":1,"EnqueueCount":1e19,"DequeueCount":0}`), want: jolokiaReply{Status: 200},
			wantErr: "EnqueueCount is too large"},
		{name: "EnqueueCount twice", body: value(`{"QueueSize":1,"EnqueueCount":1,"DequeueCount":0,"EnqueueCount":9}`), want: jolokiaReply{Status: 200},
			wantErr: "EnqueueCount appears twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseJolokia([]byte(tt.body), true)
			checkReplyErr(t, err, tt.wantErr)
			if got != tt.want {
				t.Errorf("parseJolokia = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseJolokia(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    jolokiaReply
		wantErr string
	}{
		{name: "a queue size, as the agent sends it", body: reply(t, "jolokia-size.json"), want: jolokiaReply{Status: 200, Value: 3}},
		{name: "an unknown queue, as the agent sends it", body: reply(t, "jolokia-missing.json"), want: jolokiaReply{Status: 404}},
		{name: "zero", body: `{"value":0,"status":200}`, want: jolokiaReply{Status: 200}},
		{name: "-0 is 0", body: `{"value":-0,"status":200}`, want: jolokiaReply{Status: 200}},
		{name: "a fraction, as an attribute other than QueueSize may hold", body: `{"value":0.5,"status":200}`, want: jolokiaReply{Status: 200, Value: 0.5}},
		{name: "forbidden by policy", body: `{"error_type":"java.lang.Exception","error":"java.lang.Exception : Reading attribute QueueSize is forbidden","status":403}`,
			want: jolokiaReply{Status: 403}},
		{name: "POST forbidden by policy", body: `{"error_type":"java.lang.Exception","error":"java.lang.Exception : HTTP method post is not allowed according to the installed security policy","status":403}`,
			want: jolokiaReply{Status: 403, postRefused: true}},
		{name: "an error holding the marker", body: `{"error_type":"` + marker + `","error":"` + marker + `","status":500}`, want: jolokiaReply{Status: 500}},

		{name: "an attribute that is a string", body: reply(t, "jolokia-name.json"), want: jolokiaReply{Status: 200}, wantErr: "value is not a number"},
		{name: "a value that is a string with the marker", body: `{"value":"` + marker + `","status":200}`, want: jolokiaReply{Status: 200}, wantErr: "value is not a number"},
		{name: "a map of values (an MBean pattern)", body: `{"value":{"a":{"QueueSize":1}},"status":200}`, want: jolokiaReply{Status: 200}, wantErr: "value is not a number"},
		{name: "no value", body: `{"status":200}`, want: jolokiaReply{Status: 200}, wantErr: "value is missing"},
		{name: "a null value", body: `{"value":null,"status":200}`, want: jolokiaReply{Status: 200}, wantErr: "value is null"},
		{name: "a negative value", body: `{"value":-5,"status":200}`, want: jolokiaReply{Status: 200}, wantErr: "value is negative"},
		{name: "a value beyond a long", body: `{"value":1e19,"status":200}`, want: jolokiaReply{Status: 200}, wantErr: "value is too large"},
		{name: "a value beyond any float", body: `{"value":1e400,"status":200}`, want: jolokiaReply{Status: 200}, wantErr: "value is too large"},
		{name: "a value twice", body: `{"value":5,"status":200,"value":0}`, wantErr: "value appears twice"},
		{name: "no status", body: `{"value":1}`, wantErr: "status is missing"},
		{name: "a status as a string", body: `{"value":1,"status":"200"}`, wantErr: "status is not an HTTP status code"},
		{name: "a status that is no HTTP status", body: `{"value":1,"status":0}`, wantErr: "status is not an HTTP status code"},
		{name: "a status twice", body: `{"status":404,"value":1,"status":200}`, wantErr: "status appears twice"},
		{name: "an array", body: `[{"value":1,"status":200}]`, wantErr: "the reply is not a JSON object"},
		{name: "HTML", body: `<html><body>` + marker + `</body></html>`, wantErr: "the reply is not JSON"},
		{name: "data after the reply", body: `{"value":1,"status":200} {"` + marker + `":1}`, wantErr: "the reply is not JSON"},
		{name: "nothing", body: ``, wantErr: "the reply is not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseJolokia([]byte(tt.body), false)
			checkReplyErr(t, err, tt.wantErr)
			if got != tt.want {
				t.Errorf("parseJolokia = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCompileRead(t *testing.T) {
	tests := []struct {
		name string
		cfg  *Config
		want jolokiaRead
	}{
		{name: "KEDA's default URL", cfg: &Config{ManagementEndpoint: "amq:8161", BrokerName: "b", DestinationName: "orders"},
			want: jolokiaRead{
				url:    "http://amq:8161/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=b,destinationType=Queue,destinationName=orders/QueueSize",
				scheme: "http", host: "amq:8161", broker: "b", queue: "orders", origin: "http://amq:8161", agent: "http://amq:8161/api/jolokia",
				mbean: "org.apache.activemq:type=Broker,brokerName=b,destinationType=Queue,destinationName=orders", attribute: "QueueSize",
			}},
		{name: "names escaped for Jolokia", cfg: &Config{ManagementEndpoint: "amq:8161", BrokerName: "b!", DestinationName: "a/b c"},
			want: jolokiaRead{
				url:    "http://amq:8161/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=b%21%21,destinationType=Queue,destinationName=a%21%2Fb%20c/QueueSize",
				scheme: "http", host: "amq:8161", broker: "b!", queue: "a/b c", origin: "http://amq:8161", agent: "http://amq:8161/api/jolokia",
				mbean: "org.apache.activemq:type=Broker,brokerName=b!,destinationType=Queue,destinationName=a/b c", attribute: "QueueSize",
			}},
		{name: "a literal https URL behind a prefix, with corsHeader", cfg: &Config{CorsHeader: "https://console",
			RestAPITemplate: "https://amq.example/mq/jolokia/read/org.apache.activemq:type=Broker,brokerName=amq-0,destinationType=Queue,destinationName=jobs/QueueSize"},
			want: jolokiaRead{
				url:    "https://amq.example/mq/jolokia/read/org.apache.activemq:type=Broker,brokerName=amq-0,destinationType=Queue,destinationName=jobs/QueueSize",
				scheme: "https", host: "amq.example", broker: "amq-0", queue: "jobs", origin: "https://console", agent: "https://amq.example/mq/jolokia",
				mbean: "org.apache.activemq:type=Broker,brokerName=amq-0,destinationType=Queue,destinationName=jobs", attribute: "QueueSize",
			}},
		{name: "a read with query options stays a GET", cfg: &Config{BrokerName: "b", DestinationName: "q",
			RestAPITemplate: "http://amq:8161/api/jolokia/read/org.apache.activemq:type=Broker,brokerName={{.BrokerName}},destinationType=Queue,destinationName={{.DestinationName}}/QueueSize?ignoreErrors=true"},
			want: jolokiaRead{
				url:    "http://amq:8161/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=b,destinationType=Queue,destinationName=q/QueueSize?ignoreErrors=true",
				scheme: "http", host: "amq:8161", broker: "b", queue: "q", origin: "http://amq:8161", agent: "http://amq:8161/api/jolokia",
			}},
		{name: "a URL that is no Jolokia read", cfg: &Config{BrokerName: "b", DestinationName: "q", RestAPITemplate: "http://proxy:8080/depth?queue={{.DestinationName}}"},
			want: jolokiaRead{url: "http://proxy:8080/depth?queue=q", scheme: "http", host: "proxy:8080", broker: "b", queue: "q", origin: "http://proxy:8080"}},
		{name: "a backlog-age trigger reads the counts with the size", cfg: aged(&Config{ManagementEndpoint: "amq:8161", BrokerName: "b!", DestinationName: "a/b c"}),
			want: jolokiaRead{
				url:    "http://amq:8161/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=b%21%21,destinationType=Queue,destinationName=a%21%2Fb%20c/QueueSize,EnqueueCount,DequeueCount",
				scheme: "http", host: "amq:8161", broker: "b!", queue: "a/b c", origin: "http://amq:8161", agent: "http://amq:8161/api/jolokia",
				mbean: "org.apache.activemq:type=Broker,brokerName=b!,destinationType=Queue,destinationName=a/b c", attribute: "QueueSize", counts: true,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, problems := tt.cfg.compileRead()
			if len(problems) > 0 {
				t.Fatalf("problems: %v", problems)
			}
			if got != tt.want {
				t.Errorf("compileRead =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// aged returns c with targetBacklogAge set.
func aged(c *Config) *Config {
	c.Age = time.Minute
	return c
}

func TestMBeanProperties(t *testing.T) {
	tests := []struct {
		name string
		path string
		want map[string]string
	}{
		{name: "KEDA's URL", path: "/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=b,destinationType=Queue,destinationName=q/QueueSize",
			want: map[string]string{"type": "Broker", "brokerName": "b", "destinationType": "Queue", "destinationName": "q"}},
		{name: "escaped slash and exclamation mark", path: "/read/x:brokerName=b!!,destinationName=a!/b/QueueSize",
			want: map[string]string{"brokerName": "b!", "destinationName": "a/b"}},
		{name: "no MBean", path: "/metrics", want: nil},
		{name: "a property without a value", path: "/read/x:brokerName/QueueSize", want: map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mbeanProperties(tt.path); !maps.Equal(got, tt.want) {
				t.Errorf("mbeanProperties(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
}

func TestErrNotFound(t *testing.T) {
	for _, err := range []error{queueMissing("q", "b", "http://amq:8161"), queueMissing("q", "", "stomp://amq:61613"), brokerMissing("b", "http://amq:8161")} {
		if !errors.Is(err, errNotFound) {
			t.Errorf("%v is not errNotFound", err)
		}
	}
}

// checkReplyErr checks a parser's error: none when want is empty, else a *badReply whose
// text holds want.
func checkReplyErr(t *testing.T, err error, want string) {
	t.Helper()
	var br *badReply
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && (!errors.As(err, &br) || !strings.Contains(err.Error(), want)):
		t.Fatalf("error %v, want a badReply containing %q", err, want)
	}
}
