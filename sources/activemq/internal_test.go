package activemq

import (
	"errors"
	"maps"
	"strings"
	"testing"
)

func TestParseStats(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    destStats
		wantErr string
	}{
		{name: "a queue's statistics", body: `<map>
  <entry><string>dequeueCount</string><long>2</long></entry>
  <entry><string>minEnqueueTime</string><double>0.0</double></entry>
  <entry><string>memoryPercentUsage</string><int>0</int></entry>
  <entry><string>size</string><long>3</long></entry>
  <entry><string>destinationName</string><string>queue://orders</string></entry>
  <entry><string>brokerName</string><string>amq-0</string></entry>
</map>`, want: destStats{Broker: "amq-0", Destination: "queue://orders", Size: 3}},
		{name: "the end of a list", body: "<map/>", want: destStats{End: true}},
		{name: "the end of a list, spelt out", body: "\n<map></map>\n", want: destStats{End: true}},
		{name: "a large size", body: "<map><entry><string>size</string><long>9007199254740993</long></entry></map>", want: destStats{Size: 9007199254740992}},
		{name: "no size", body: "<map><entry><string>brokerName</string><string>b</string></entry></map>", wantErr: "statistics reply without size"},
		{name: "a size that is no number", body: "<map><entry><string>size</string><string>many</string></entry></map>", wantErr: `statistics reply with size "many", not a number`},
		{name: "an entry without a value", body: "<map><entry><string>size</string></entry></map>", wantErr: "value of size: want <a value>, got {{ entry}}"},
		{name: "an entry with two values", body: "<map><entry><string>size</string><long>1</long><long>2</long></entry></map>", wantErr: "entry size has more than a name and a value"},
		{name: "an entry whose name is no string", body: "<map><entry><long>1</long><long>2</long></entry></map>", wantErr: "entry name: want <string>"},
		{name: "a value that holds elements", body: "<map><entry><string>size</string><list><long>2</long></list></entry></map>", wantErr: "<list> holds an element"},
		{name: "an element other than entry", body: "<map><item/></map>", wantErr: "want <entry>"},
		{name: "cut short", body: "<map><entry><string>size</string><long>3</long>", wantErr: "EOF"},
		{name: "jms-map-json instead", body: `{"map":{}}`, wantErr: "statistics reply is not a jms-map-xml map"},
		{name: "another document", body: "<list/>", wantErr: "statistics reply is not a jms-map-xml map (want <map>"},
		{name: "with an XML declaration and comments", body: "<?xml version=\"1.0\"?>\n<!-- stats -->\n<map><entry><string>size</string><long>7</long></entry></map>", want: destStats{Size: 7}},
		{name: "nothing", body: "", wantErr: "statistics reply is not a jms-map-xml map"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStats([]byte(tt.body))
			checkErr(t, err, tt.wantErr)
			if got != tt.want {
				t.Errorf("parseStats = %+v, want %+v", got, tt.want)
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
		{name: "a queue size", body: `{"request":{"mbean":"org.apache.activemq:brokerName=b,destinationName=q,destinationType=Queue,type=Broker","attribute":"QueueSize","type":"read"},"value":42,"timestamp":1700000000,"status":200}`,
			want: jolokiaReply{Status: 200, Value: 42}},
		{name: "zero", body: `{"value":0,"status":200}`, want: jolokiaReply{Status: 200}},
		{name: "unknown MBean", body: `{"error_type":"javax.management.InstanceNotFoundException","error":"javax.management.InstanceNotFoundException : org.apache.activemq:type=Broker,brokerName=b,destinationType=Queue,destinationName=nosuch","status":404,"stacktrace":"…"}`,
			want: jolokiaReply{Status: 404, ErrorType: "javax.management.InstanceNotFoundException", Error: "javax.management.InstanceNotFoundException : org.apache.activemq:type=Broker,brokerName=b,destinationType=Queue,destinationName=nosuch"}},
		{name: "forbidden by policy", body: `{"error_type":"java.lang.Exception","error":"java.lang.Exception : Reading attribute QueueSize is forbidden","status":403}`,
			want: jolokiaReply{Status: 403, ErrorType: "java.lang.Exception", Error: "java.lang.Exception : Reading attribute QueueSize is forbidden"}},
		{name: "a value that is no number", body: `{"value":"orders","status":200}`, wantErr: `the value read is "orders", not a number`},
		{name: "a map of values (an MBean pattern)", body: `{"value":{"a":{"QueueSize":1}},"status":200}`, wantErr: "not a number"},
		{name: "no status", body: `{"value":1}`, wantErr: "not a Jolokia reply (no status)"},
		{name: "HTML", body: `<html><body>Not found</body></html>`, wantErr: "not a Jolokia reply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseJolokia([]byte(tt.body))
			checkErr(t, err, tt.wantErr)
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

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q does not contain %q", err, want)
	}
}
