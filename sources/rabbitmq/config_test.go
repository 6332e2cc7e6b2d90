package rabbitmq_test

import (
	"strings"
	"testing"

	"github.com/qscale/qscale/sources"
	"github.com/qscale/qscale/sources/internal/sourcetest"
)

// testPassword is the password of the hosts in configuration tests: no message may show it.
const testPassword = "s3cret-pw"

type problemCase struct {
	name       string
	md, secret map[string]string
	want       []string // substrings of the error, one per problem
	missing    []string // parameters whose problem is marked Missing
}

func TestConfigProblems(t *testing.T) {
	amqpHost := map[string]string{"host": "amqp://u:" + testPassword + "@rabbit:5672/v"}
	httpHost := map[string]string{"host": "https://u:" + testPassword + "@rabbit:15671/v"}
	q := func(kv ...string) map[string]string { return md(append([]string{"queueName", "orders"}, kv...)...) }
	tests := []problemCase{
		{name: "valid amqp", md: q(), secret: amqpHost},
		{name: "valid http with every option", md: q("protocol", "http", "mode", "MessageRate", "value", "12.5", "activationValue", "1",
			"vhostName", "other", "useRegex", "true", "operation", "avg", "excludeUnacknowledged", "true", "pageSize", "500", "timeout", "1500",
			"unsafeSsl", "true", "username", "u"), secret: map[string]string{"host": "https://rabbit:15671/", "password": "p"}},
		{name: "excludeUnacknowledged over amqp is what amqp does", md: q("excludeUnacknowledged", "true"), secret: amqpHost},
		{name: "host without a password in metadata", md: q("host", "amqp://rabbit:5672/v")},
		{name: "required parameters", md: map[string]string{}, want: []string{"host: is required", "queueName: is required"}, missing: []string{"host", "queueName"}},
		{name: "host with another scheme", md: q("host", "redis://rabbit:6379"), want: []string{"host: must be an amqp://, amqps://, http:// or https:// URL, got scheme redis"}},
		{name: "host without a host", md: q("host", "amqp:///v"), want: []string{"host: names no host"}},
		{name: "unparsable host keeps its password hidden", md: q(), secret: map[string]string{"host": "amqp://u:" + testPassword + "@rab bit:5672/"}, want: []string{"host: is not a URL"}},
		{name: "protocol amqp with an http host", md: q("protocol", "amqp"), secret: httpHost, want: []string{"protocol: is amqp but host is an http(s):// URL"}},
		{name: "protocol http with an amqp host", md: q("protocol", "http"), secret: amqpHost, want: []string{"protocol: is http but host is an amqp(s):// URL"}},
		{name: "unknown protocol", md: q("protocol", "stomp"), secret: amqpHost, want: []string{"protocol: must be one of auto, amqp, http"}},
		{name: "unsupported KEDA mode", md: q("mode", "DeliverGetRate", "value", "1"), secret: httpHost, want: []string{"mode: must be one of QueueLength, MessageRate"}},
		{name: "queueLength with mode and value", md: q("queueLength", "5", "mode", "QueueLength", "value", "5"), secret: amqpHost, want: []string{"queueLength: is the deprecated form"}},
		{name: "MessageRate without value", md: q("mode", "MessageRate"), secret: httpHost, want: []string{"value: is required when mode is MessageRate"}, missing: []string{"value"}},
		{name: "MessageRate over amqp", md: q("mode", "MessageRate", "value", "1"), secret: amqpHost, want: []string{"mode: MessageRate needs the management API"}},
		{name: "useRegex over amqp", md: q("useRegex", "true"), secret: amqpHost, want: []string{"useRegex: needs the management API"}},
		{name: "value must be positive", md: q("value", "0"), secret: amqpHost, want: []string{"value: must be greater than 0"}},
		{name: "activationValue must not be negative", md: q("activationValue", "-1"), secret: amqpHost, want: []string{"activationValue: must be at least 0"}},
		{name: "unknown operation", md: q("operation", "min", "useRegex", "true"), secret: httpHost, want: []string{"operation: must be one of sum, max, avg"}},
		{name: "pageSize below 1", md: q("pageSize", "0"), secret: httpHost, want: []string{"pageSize: must be at least 1"}},
		{name: "pageSize above the API's limit", md: q("pageSize", "501"), secret: httpHost, want: []string{"pageSize: must be at most 500"}},
		{name: "timeout of 0", md: q("timeout", "0"), secret: httpHost, want: []string{"timeout: must be greater than 0"}},
		{name: "timeout that is no duration", md: q("timeout", "soon"), secret: httpHost, want: []string{"timeout: must be a number of milliseconds or a duration"}},
		{name: "bad regex", md: q("queueName", "jobs-(", "useRegex", "true"), secret: httpHost, want: []string{"queueName: is not a valid regular expression"}},
		{name: "username without password", md: q("username", "u"), secret: amqpHost, want: []string{"password: is required when username is set"}, missing: []string{"password"}},
		{name: "password without username", md: q(), secret: map[string]string{"host": "amqp://rabbit/", "password": "p"}, want: []string{"username: is required when password is set"}, missing: []string{"username"}},
		{name: "password only from the Secret", md: q("username", "u", "password", "p"), secret: amqpHost, want: []string{"password: is secret"}},
		{name: "key only from the Secret", md: q("tls", "enable", "key", "k"), secret: httpHost, want: []string{"key: is secret"}},
		{name: "tls material without tls", md: q("ca", "x"), secret: httpHost, want: []string{"ca: is set but tls is not enable"}},
		{name: "tls without a TLS scheme", md: q("tls", "enable"), secret: amqpHost, want: []string{"tls: is enable but host is not an amqps:// or https:// URL"}},
		{name: "cert without key", md: q("tls", "enable", "cert", "x"), secret: httpHost, want: []string{"cert: cert and key must be given together"}},
		{name: "bad ca", md: q("tls", "enable", "ca", "not pem"), secret: httpHost, want: []string{"tls: ca: no PEM certificate found"}},
		{name: "hostFromEnv is not read", md: q("hostFromEnv", "RABBITMQ_HOST"), secret: amqpHost, want: []string{"hostFromEnv: is not supported: qscale does not read the workload's environment"}},
		{name: "misspelt parameter", md: q("queueNmae", "x"), secret: amqpHost, want: []string{`queueNmae: unknown parameter (did you mean "queueName"?)`}},
		{name: "targetBacklogAge over http", md: q("targetBacklogAge", "30s", "replicaThroughput", "50", "useRegex", "true", "excludeUnacknowledged", "true"), secret: httpHost},
		{name: "targetBacklogAge with mode QueueLength", md: q("targetBacklogAge", "30s", "mode", "QueueLength"), secret: httpHost},
		{name: "targetBacklogAge over amqp", md: q("targetBacklogAge", "30s"), secret: amqpHost,
			want: []string{"targetBacklogAge: needs the management API: use an http(s):// host (protocol http)"}},
		{name: "targetBacklogAge over protocol amqp", md: q("targetBacklogAge", "30s", "protocol", "amqp"), secret: map[string]string{"host": "amqps://u:" + testPassword + "@rabbit:5671/v"},
			want: []string{"targetBacklogAge: needs the management API"}},
		{name: "targetBacklogAge replaces value", md: q("targetBacklogAge", "30s", "value", "20"), secret: httpHost,
			want: []string{"targetBacklogAge: cannot be set with value: targetBacklogAge replaces it"}},
		{name: "targetBacklogAge replaces queueLength", md: q("targetBacklogAge", "30s", "queueLength", "20"), secret: httpHost,
			want: []string{"targetBacklogAge: cannot be set with queueLength: targetBacklogAge replaces it"}},
		{name: "targetBacklogAge with MessageRate", md: q("targetBacklogAge", "30s", "mode", "MessageRate"), secret: httpHost,
			want: []string{"mode: MessageRate cannot be used with targetBacklogAge"}},
		{name: "targetBacklogAge that is no duration", md: q("targetBacklogAge", "30"), secret: httpHost,
			want: []string{`targetBacklogAge: must be a duration such as 500ms or 10s, got "30"`}},
		{name: "replicaThroughput without targetBacklogAge", md: q("replicaThroughput", "30"), secret: httpHost,
			want: []string{"replicaThroughput: has no effect without targetBacklogAge"}},
		{name: "a password in the host is reported with the other problems",
			md:   q("host", "amqp://u:"+testPassword+"@rabbit:5672/v", "value", "0", "queueNmae", "x", "pageSize", "501"),
			want: []string{"host: holds a password", "value: must be greater than 0", `queueNmae: unknown parameter`, "pageSize: must be at most 500"}},
		{name: "a host of another scheme hides no other problem", md: q("host", "redis://rabbit:6379", "pageSize", "501"),
			want: []string{"host: must be an amqp://", "pageSize: must be at most 500"}},
		{name: "without a host the other parameters are still checked", md: q("pageSize", "501", "useRegex", "true", "protocol", "amqp"),
			want: []string{"host: is required", "pageSize: must be at most 500", "useRegex: needs the management API"}, missing: []string{"host"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt) })
	}
}

func checkProblems(t *testing.T, tt problemCase) {
	t.Helper()
	_, err := registry.Parse(sources.Params{Type: "rabbitmq", Name: "orders", Metadata: tt.md, Secret: tt.secret})
	sourcetest.CheckConfigError(t, err, "orders", tt.want)
	sourcetest.CheckMissing(t, err, testPassword, tt.missing)
}

func TestTarget(t *testing.T) {
	tests := []struct {
		name string
		md   map[string]string
		want float64
	}{
		{name: "KEDA's default without mode, value or queueLength", md: md(), want: 20},
		{name: "QueueLength without value", md: md("mode", "QueueLength"), want: 20},
		{name: "value", md: md("mode", "QueueLength", "value", "7.5"), want: 7.5},
		{name: "legacy queueLength", md: md("queueLength", "30"), want: 30},
		{name: "MessageRate value", md: md("mode", "MessageRate", "value", "2", "protocol", "http"), want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.md["queueName"] = "q"
			host := "amqp://rabbit/"
			if tt.md["protocol"] == "http" {
				host = "http://rabbit:15672/"
			}
			tt.md["host"] = host
			if got := parse(t, tt.md, nil).Config.Target(); got != tt.want {
				t.Errorf("target = %v, want %v", got, tt.want)
			}
		})
	}
}

// Triggers share a Source when they share broker, credentials and, over AMQP, the vhost;
// nothing else about them matters, and the key never holds a secret.
func TestConnectionKeys(t *testing.T) {
	conn := func(m, secret map[string]string) string {
		return parse(t, m, secret).Config.Connection()
	}
	const pw1, pw2 = "pw1", "pw2"
	host := func(scheme, pw, rest string) map[string]string {
		return map[string]string{"host": scheme + "://u:" + pw + "@rabbit:" + rest}
	}
	amqpV, httpV := host("amqp", pw1, "5672/v1"), host("http", pw1, "15672/v1")
	tests := []struct {
		name  string
		a, b  string
		share bool
	}{
		{"amqp: other queue, target and timeout", conn(md("queueName", "a"), amqpV), conn(md("queueName", "b", "value", "3", "timeout", "900"), amqpV), true},
		{"amqp: vhostName naming the same vhost", conn(md("queueName", "a"), amqpV), conn(md("queueName", "a", "vhostName", "v1"), host("amqp", pw1, "5672/")), true},
		{"amqp: default port written out", conn(md("queueName", "a", "host", "amqp://rabbit/v1"), nil), conn(md("queueName", "a", "host", "amqp://rabbit:5672/v1"), nil), true},
		{"amqp: credentials in parameters or in the URL", conn(md("queueName", "a", "username", "u"), map[string]string{"host": "amqp://rabbit:5672/v1", "password": pw1}), conn(md("queueName", "a"), amqpV), true},
		{"amqp: other vhost", conn(md("queueName", "a"), amqpV), conn(md("queueName", "a", "vhostName", "v2"), amqpV), false},
		{"amqp: other password", conn(md("queueName", "a"), amqpV), conn(md("queueName", "a"), host("amqp", pw2, "5672/v1")), false},
		{"amqp and http", conn(md("queueName", "a"), amqpV), conn(md("queueName", "a"), httpV), false},
		{"http: other vhost", conn(md("queueName", "a"), httpV), conn(md("queueName", "a", "vhostName", "v2"), httpV), true},
		{"http: other path prefix", conn(md("queueName", "a"), httpV), conn(md("queueName", "a"), host("http", pw1, "15672/mgmt/v1")), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if (tt.a == tt.b) != tt.share {
				t.Errorf("share = %v, want %v:\n%s\n%s", tt.a == tt.b, tt.share, tt.a, tt.b)
			}
			for _, k := range []string{tt.a, tt.b} {
				if strings.Contains(k, pw1) || strings.Contains(k, pw2) {
					t.Errorf("connection key holds a password: %s", k)
				}
			}
		})
	}
}

// A host URL holding a password is refused in metadata and accepted from the Secret; the
// error never shows the password.
func TestHostWithPasswordOnlyFromTheSecret(t *testing.T) {
	const host = "amqp://orders:hunter2@rabbit:5672/" //nolint:gosec // a made-up password: the test checks it is hidden
	tests := []struct {
		name    string
		md      map[string]string
		secret  map[string]string
		wantErr bool
	}{
		{name: "in metadata", md: map[string]string{"host": host, "queueName": "q"}, wantErr: true},
		{name: "in the Secret", md: map[string]string{"queueName": "q"}, secret: map[string]string{"host": host}},
		{name: "without a password in metadata", md: map[string]string{"host": "amqp://rabbit:5672/", "queueName": "q"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := registry.Parse(sources.Params{Type: "rabbitmq", Name: "q", Metadata: tt.md, Secret: tt.secret})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && (strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "host")) {
				t.Fatalf("error should name host and hide the password: %v", err)
			}
		})
	}
}
