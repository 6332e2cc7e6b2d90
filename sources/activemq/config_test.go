package activemq_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/qscale/qscale/sources"
	"github.com/qscale/qscale/sources/internal/sourcetest"
)

// testPassword is the password in configuration tests: no message may show it.
const testPassword = "s3cret-pw"

type problemCase struct {
	name       string
	md, secret map[string]string
	want       []string // substrings of the error, one per problem
	missing    []string // parameters whose problem is marked Missing
}

func TestConfigProblems(t *testing.T) {
	auth := map[string]string{"username": "admin", "password": testPassword}
	jolokia := md("managementEndpoint", "amq:8161", "brokerName", "b", "destinationName", "orders")
	stomp := md("protocol", "stomp", "stompEndpoint", "amq:61613", "destinationName", "orders")
	const url = "http://amq:8161/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=b,destinationType=Queue,destinationName=orders/QueueSize"
	tests := []problemCase{
		{name: "valid jolokia", md: jolokia, secret: auth},
		{name: "valid jolokia with every option", md: with(jolokia, "targetQueueSize", "2.5", "activationTargetQueueSize", "1", "corsHeader", "http://console", "username", "admin"),
			secret: map[string]string{"password": testPassword}},
		{name: "valid jolokia without credentials", md: jolokia},
		{name: "valid restAPITemplate alone", md: md("restAPITemplate", url), secret: auth},
		{name: "valid restAPITemplate with placeholders", md: with(jolokia, "restAPITemplate", "https://{{.ManagementEndpoint}}/jolokia/read/org.apache.activemq:type=Broker,brokerName={{.BrokerName}},destinationType=Queue,destinationName={{.DestinationName}}/QueueSize")},
		{name: "valid restAPITemplate that agrees with the parameters", md: with(jolokia, "restAPITemplate", url)},
		{name: "valid stomp", md: stomp, secret: auth},
		{name: "valid stomp with brokerName", md: with(stomp, "brokerName", "b")},
		{name: "jolokia without anything", md: md(), want: []string{"managementEndpoint: is required (or give restAPITemplate)", "brokerName: is required", "destinationName: is required"},
			missing: []string{"managementEndpoint", "brokerName", "destinationName"}},
		{name: "jolokia without brokerName", md: with(jolokia, "brokerName", ""), want: []string{"brokerName: is required (or give restAPITemplate)"}, missing: []string{"brokerName"}},
		{name: "managementEndpoint with a scheme", md: with(jolokia, "managementEndpoint", "http://amq:8161"), want: []string{`managementEndpoint: must be host:port such as activemq:8161, without a scheme, got "http://amq:8161"`}},
		{name: "managementEndpoint without a port", md: with(jolokia, "managementEndpoint", "amq"), want: []string{`managementEndpoint: must be host:port such as activemq:8161, got "amq"`}},
		{name: "managementEndpoint that makes no URL", md: with(jolokia, "managementEndpoint", "a b:8161"), want: []string{"managementEndpoint: does not render a URL"}},
		{name: "managementEndpoint with a bad port", md: with(jolokia, "managementEndpoint", "amq:99999"), want: []string{"managementEndpoint: must be host:port"}},
		{name: "stompEndpoint with jolokia", md: with(jolokia, "stompEndpoint", "amq:61613"), want: []string{"stompEndpoint: is read by protocol stomp only"}},
		{name: "unknown protocol", md: with(jolokia, "protocol", "openwire"), want: []string{"protocol: must be one of jolokia, stomp"}},
		{name: "a refused protocol reads as jolokia, which asks for nothing", md: with(stomp, "protocol", "STOMP", "targetQueueSize", "0"),
			want: []string{"protocol: must be one of jolokia, stomp", "targetQueueSize: must be greater than 0", "stompEndpoint: is read by protocol stomp only; protocol is jolokia (set protocol: stomp"}},
		{name: "a refused number hides no missing parameter", md: with(jolokia, "brokerName", "", "targetQueueSize", "ten"),
			want: []string{`targetQueueSize: must be a number, got "ten"`, "brokerName: is required (or give restAPITemplate)"}, missing: []string{"brokerName"}},
		{name: "targetQueueSize of 0", md: with(jolokia, "targetQueueSize", "0"), want: []string{"targetQueueSize: must be greater than 0"}},
		{name: "targetQueueSize that is no number", md: with(jolokia, "targetQueueSize", "ten"), want: []string{`targetQueueSize: must be a number, got "ten"`}},
		{name: "negative activationTargetQueueSize", md: with(jolokia, "activationTargetQueueSize", "-1"), want: []string{"activationTargetQueueSize: must be at least 0"}},
		{name: "a wildcard queue", md: with(jolokia, "destinationName", "orders.>"), want: []string{"destinationName: must name one queue"}},
		{name: "a composite queue", md: with(stomp, "destinationName", "a,b"), want: []string{"destinationName: must name one queue: ActiveMQ reads a comma as a list"}},
		{name: "password only from the Secret", md: with(jolokia, "username", "admin", "password", testPassword), want: []string{"password: is secret"}},
		{name: "username without password", md: with(jolokia, "username", "admin"), want: []string{"password: is required when username is set"}, missing: []string{"password"}},
		{name: "password without username", md: jolokia, secret: map[string]string{"password": testPassword}, want: []string{"username: is required when password is set"}, missing: []string{"username"}},
		{name: "stomp without stompEndpoint or queue", md: md("protocol", "stomp"), want: []string{"stompEndpoint: is required when protocol is stomp", "destinationName: is required"},
			missing: []string{"stompEndpoint", "destinationName"}},
		{name: "stomp with a bad stompEndpoint", md: with(stomp, "stompEndpoint", "stomp://amq:61613"), want: []string{"stompEndpoint: must be host:port such as activemq:61613, without a scheme"}},
		{name: "stomp with the Jolokia parameters", md: with(stomp, "managementEndpoint", "amq:8161", "restAPITemplate", url, "corsHeader", "http://x"),
			want: []string{"managementEndpoint: is read by protocol jolokia only", "restAPITemplate: is read by protocol jolokia only", "corsHeader: is read by protocol jolokia only"}},
		{name: "restAPITemplate that is no template", md: md("restAPITemplate", "http://{{.ManagementEndpoint"), want: []string{"restAPITemplate: is not a valid template"}},
		{name: "restAPITemplate with an unknown field", md: md("restAPITemplate", "http://{{.Host}}/q"), want: []string{"restAPITemplate: may only use {{.ManagementEndpoint}}, {{.BrokerName}} and {{.DestinationName}}"}},
		{name: "restAPITemplate with a loop", md: md("restAPITemplate", "http://amq/{{range 1000000000}}x{{end}}"), want: []string{"restAPITemplate: may only use"}},
		{name: "restAPITemplate using an unset parameter", md: md("restAPITemplate", "http://{{.ManagementEndpoint}}/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=b,destinationName=q/QueueSize"),
			want: []string{"managementEndpoint: is required: restAPITemplate uses {{.ManagementEndpoint}}"}, missing: []string{"managementEndpoint"}},
		{name: "restAPITemplate without a scheme", md: md("restAPITemplate", "amq:8161/api/jolokia/read/x:brokerName=b,destinationName=q/QueueSize"), want: []string{"restAPITemplate: must render an http:// or https:// URL"}},
		{name: "restAPITemplate without a host", md: md("restAPITemplate", "http:///api/jolokia/read/x:brokerName=b,destinationName=q/QueueSize"), want: []string{"restAPITemplate: renders a URL without a host"}},
		{name: "restAPITemplate with a password keeps it hidden", md: md("restAPITemplate", "http://admin:"+testPassword+"@amq:8161/api/jolokia/read/x:brokerName=b,destinationName=q/QueueSize"),
			want: []string{"restAPITemplate: holds credentials: put username and password in the Secret"}},
		{name: "restAPITemplate that names no queue or broker", md: md("restAPITemplate", "http://amq:8161/metrics"),
			want: []string{"brokerName: is required: set it, or spell it out in restAPITemplate (brokerName=…)", "destinationName: is required: set it, or spell it out"}, missing: []string{"brokerName", "destinationName"}},
		{name: "restAPITemplate that disagrees with the parameters", md: with(jolokia, "restAPITemplate", url, "managementEndpoint", "other:8161", "brokerName", "c", "destinationName", "jobs"),
			want: []string{`managementEndpoint: is "other:8161" but restAPITemplate reads from "amq:8161"`, `brokerName: is "c" but restAPITemplate reads brokerName "b"`, `destinationName: is "jobs" but restAPITemplate reads destinationName "orders"`}},
		{name: "misspelt parameter", md: with(jolokia, "destinationNmae", "x"), want: []string{`destinationNmae: unknown parameter (did you mean "destinationName"?)`}},
		{name: "targetBacklogAge over jolokia", md: with(jolokia, "targetBacklogAge", "30s", "replicaThroughput", "12", "activationTargetQueueSize", "1"), secret: auth},
		{name: "targetBacklogAge over stomp", md: with(stomp, "targetBacklogAge", "2m"), secret: auth},
		{name: "targetBacklogAge with a restAPITemplate reading QueueSize", md: md("restAPITemplate", url, "targetBacklogAge", "30s")},
		{name: "targetBacklogAge replaces targetQueueSize", md: with(stomp, "targetBacklogAge", "30s", "targetQueueSize", "5"),
			want: []string{"targetBacklogAge: cannot be set with targetQueueSize: targetBacklogAge replaces it"}},
		{name: "targetBacklogAge with a restAPITemplate reading another attribute", md: md("restAPITemplate", strings.TrimSuffix(url, "QueueSize")+"InFlightCount", "targetBacklogAge", "30s"),
			want: []string{"targetBacklogAge: needs restAPITemplate to read QueueSize of a queue's MBean through Jolokia"}},
		{name: "targetBacklogAge with a restAPITemplate with query options", md: md("restAPITemplate", url+"?ignoreErrors=true", "targetBacklogAge", "30s"),
			want: []string{"targetBacklogAge: needs restAPITemplate to read QueueSize"}},
		{name: "targetBacklogAge with a restAPITemplate that is no Jolokia read", md: md("restAPITemplate", "http://proxy:8080/depth?queue={{.DestinationName}}&broker={{.BrokerName}}",
			"destinationName", "orders", "brokerName", "b", "targetBacklogAge", "30s"),
			want: []string{"targetBacklogAge: needs restAPITemplate to read QueueSize"}},
		{name: "targetBacklogAge of half a second", md: with(jolokia, "targetBacklogAge", "500ms"), want: []string{`targetBacklogAge: must be at least 1s, got "500ms"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt) })
	}
}

func checkProblems(t *testing.T, tt problemCase) {
	t.Helper()
	_, err := registry.Parse(sources.Params{Type: "activemq", Name: "orders", Metadata: tt.md, Secret: tt.secret})
	sourcetest.CheckConfigError(t, err, "orders", tt.want)
	sourcetest.CheckMissing(t, err, testPassword, tt.missing)
}

// Triggers share a Source when they read one endpoint with the same credentials, whatever
// queue they read; the password shows only as a digest.
func TestConnection(t *testing.T) {
	jolokia := md("managementEndpoint", "amq:8161", "brokerName", "b", "destinationName", "orders")
	stomp := md("protocol", "stomp", "stompEndpoint", "amq:61613", "destinationName", "orders")
	auth := map[string]string{"username": "admin", "password": testPassword}
	other := map[string]string{"username": "admin", "password": "other-pw"}
	tpl := "https://amq:8161/jolokia/read/org.apache.activemq:type=Broker,brokerName=b,destinationType=Queue,destinationName=orders/QueueSize"
	key := func(m, secret map[string]string) string { return parse(t, m, secret).Key() }
	tests := []struct {
		name       string
		a, b       string
		wantShared bool
	}{
		{"jolokia: another queue and broker", key(jolokia, auth), key(with(jolokia, "destinationName", "jobs", "brokerName", "c"), auth), true},
		{"jolokia: a literal URL on the same endpoint", key(jolokia, auth), key(md("restAPITemplate", "http://amq:8161/x:brokerName=b,destinationName=q/QueueSize"), auth), true},
		{"jolokia: another endpoint", key(jolokia, auth), key(with(jolokia, "managementEndpoint", "amq2:8161"), auth), false},
		{"jolokia: https", key(jolokia, auth), key(md("restAPITemplate", tpl), auth), false},
		{"jolokia: another password", key(jolokia, auth), key(jolokia, other), false},
		{"stomp: another queue", key(stomp, auth), key(with(stomp, "destinationName", "jobs"), auth), true},
		{"stomp: another password", key(stomp, auth), key(stomp, other), false},
		{"jolokia and stomp", key(jolokia, auth), key(stomp, auth), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if (tt.a == tt.b) != tt.wantShared {
				t.Errorf("keys %q and %q: shared = %v, want %v", tt.a, tt.b, tt.a == tt.b, tt.wantShared)
			}
			for _, k := range []string{tt.a, tt.b} {
				if strings.Contains(k, testPassword) || strings.Contains(k, "other-pw") {
					t.Errorf("connection key %q holds a password", k)
				}
			}
		})
	}
}

// The scaler tells an unchanged trigger from a changed one by comparing configs: a config
// is prepared once, when parsed, and polling it changes nothing.
func TestConfigUnchangedByPolling(t *testing.T) {
	agent := sourcetest.HTTPServer(t, sourcetest.Answer(http.StatusOK, "application/json", `{"status":200,"value":3}`))
	tests := []struct {
		name string
		md   map[string]string
	}{
		{name: "managementEndpoint", md: md("managementEndpoint", agent, "brokerName", "b", "destinationName", "orders")},
		{name: "restAPITemplate", md: md("restAPITemplate", "http://"+agent+"/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=b,destinationType=Queue,destinationName=orders/QueueSize")},
		{name: "stomp", md: md("protocol", "stomp", "stompEndpoint", sourcetest.ClosedPort(t), "destinationName", "orders")},
		{name: "targetBacklogAge", md: md("managementEndpoint", agent, "brokerName", "b", "destinationName", "orders", "targetBacklogAge", "30s")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			polled, fresh := parse(t, tt.md, nil), parse(t, tt.md, nil)
			poll(t, newPool(t), polled)
			_ = polled.Config.Connection()
			if !reflect.DeepEqual(polled, fresh) {
				t.Errorf("a polled config differs from a fresh one parsed from the same parameters:\n%#v\n%#v", polled.Config, fresh.Config)
			}
		})
	}
	t.Run("the compiled read is what is polled", func(t *testing.T) {
		got := poll(t, newPool(t), parse(t, tests[0].md, nil))[0]
		wantSample(t, got, "", 3, true)
	})
}
