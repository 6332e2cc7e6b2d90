package kafka_test

import (
	"math"
	"strings"
	"testing"

	"github.com/qscale/qscale/sources"
	"github.com/qscale/qscale/sources/internal/sourcetest"
	"github.com/qscale/qscale/sources/kafka"
)

func TestConfigProblems(t *testing.T) {
	base := func(kv ...string) map[string]string {
		md := map[string]string{"bootstrapServers": "k1:9092,k2:9092", "consumerGroup": "g", "topic": "orders"}
		for i := 0; i+1 < len(kv); i += 2 {
			md[kv[i]] = kv[i+1]
		}
		return md
	}
	tests := []struct {
		name   string
		md     map[string]string
		secret map[string]string
		want   []string // substrings of the error, one per problem
	}{
		{name: "valid with every option", md: base("lagThreshold", "50", "activationLagThreshold", "5", "offsetResetPolicy", "earliest",
			"limitToPartitionsWithLag", "true", "excludePersistentLag", "true", "scaleToZeroOnInvalidOffset", "true",
			"partitionLimitation", "0,2-4", "version", "1.0.0", "fullMetadata", "false", "sasl", "scram_sha512", "username", "u"),
			secret: map[string]string{"password": "p"}},
		{name: "required parameters", md: map[string]string{}, want: []string{"bootstrapServers: is required", "consumerGroup: is required"}},
		{name: "bad server address", md: base("bootstrapServers", "k1"), want: []string{`bootstrapServers: "k1" is not host:port`}},
		{name: "threshold must be positive", md: base("lagThreshold", "0"), want: []string{"lagThreshold: must be greater than 0"}},
		{name: "activation threshold must not be negative", md: base("activationLagThreshold", "-1"), want: []string{"activationLagThreshold: must be at least 0"}},
		{name: "unknown policy", md: base("offsetResetPolicy", "newest"), want: []string{"offsetResetPolicy: must be one of latest, earliest"}},
		{name: "unknown sasl", md: base("sasl", "gssapi"), want: []string{"sasl: must be one of none, plain, plaintext, scram_sha256, scram_sha512"}},
		{name: "sasl needs credentials", md: base("sasl", "plain"), want: []string{"username: is required when sasl is plain", "password: is required"}},
		{name: "password only from the Secret", md: base("sasl", "plain", "username", "u", "password", "p"), want: []string{"password: is secret"}},
		{name: "tls material without tls", md: base("ca", "x"), want: []string{"ca: is set but tls is not enable"}},
		{name: "cert without key", md: base("tls", "enable", "cert", "x"), want: []string{"cert: cert and key must be given together"}},
		{name: "bad ca", md: base("tls", "enable", "ca", "not pem"), want: []string{"tls: ca: no PEM certificate found"}},
		{name: "idle consumers with a partition limit", md: base("allowIdleConsumers", "true", "limitToPartitionsWithLag", "true"), want: []string{"limitToPartitionsWithLag: cannot be used with allowIdleConsumers"}},
		{name: "idle consumers with even distribution", md: base("allowIdleConsumers", "true", "ensureEvenDistributionOfPartitions", "true"), want: []string{"ensureEvenDistributionOfPartitions: cannot be used with allowIdleConsumers"}},
		{name: "partitionLimitation without topic", md: base("topic", "", "partitionLimitation", "1"), want: []string{"partitionLimitation: needs topic"}},
		{name: "limitToPartitionsWithLag without topic, as KEDA refuses it", md: base("topic", "", "limitToPartitionsWithLag", "true"),
			want: []string{"limitToPartitionsWithLag: needs topic, as in KEDA: set topic"}},
		{name: "limitToPartitionsWithLag with a topic list of blanks", md: base("topic", " , ", "limitToPartitionsWithLag", "true"),
			want: []string{"limitToPartitionsWithLag: needs topic"}},
		{name: "limitToPartitionsWithLag false without topic", md: base("topic", "", "limitToPartitionsWithLag", "false")},
		{name: "limitToPartitionsWithLag with allowIdleConsumers and without topic", md: base("topic", "", "limitToPartitionsWithLag", "true", "allowIdleConsumers", "true"),
			want: []string{"limitToPartitionsWithLag: cannot be used with allowIdleConsumers", "limitToPartitionsWithLag: needs topic"}},
		{name: "refused values and combinations are reported together", md: base("lagThreshold", "0", "allowIdleConsumers", "true", "limitToPartitionsWithLag", "true", "offsetResetPolicy", "newest"),
			want: []string{"lagThreshold: must be greater than 0", "offsetResetPolicy: must be one of latest, earliest", "limitToPartitionsWithLag: cannot be used with allowIdleConsumers"}},
		{name: "a refused sasl reads as none: no credentials asked for", md: base("sasl", "PLAIN", "bootstrapServers", "k1"),
			want: []string{"sasl: must be one of", `bootstrapServers: "k1" is not host:port`}},
		{name: "a missing parameter hides no other problem", md: base("consumerGroup", "", "allowIdleConsumers", "true", "ensureEvenDistributionOfPartitions", "true"),
			want: []string{"consumerGroup: is required", "ensureEvenDistributionOfPartitions: cannot be used with allowIdleConsumers"}},
		{name: "bad partitionLimitation", md: base("partitionLimitation", "1,5-2"), want: []string{`partitionLimitation: must list partitions and ranges such as 1,2,10-20; "5-2" is not one`}},
		{name: "misspelt parameter", md: base("lagThreshhold", "5"), want: []string{`lagThreshhold: unknown parameter (did you mean "lagThreshold"?)`}},
		{name: "targetBacklogAge with activation and replicaThroughput", md: base("targetBacklogAge", "45s", "replicaThroughput", "120", "activationLagThreshold", "3")},
		{name: "targetBacklogAge replaces lagThreshold", md: base("targetBacklogAge", "45s", "lagThreshold", "50"),
			want: []string{"targetBacklogAge: cannot be set with lagThreshold: targetBacklogAge replaces it"}},
		{name: "targetBacklogAge below a second", md: base("targetBacklogAge", "100ms"), want: []string{`targetBacklogAge: must be at least 1s, got "100ms"`}},
		{name: "replicaThroughput must be positive", md: base("targetBacklogAge", "1m", "replicaThroughput", "0"), want: []string{`replicaThroughput: must be greater than 0, got "0"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := registry.Parse(sources.Params{Type: "kafka", Name: "orders", Metadata: tt.md, Secret: tt.secret})
			sourcetest.CheckConfigError(t, err, "orders", tt.want)
		})
	}
}

func TestConnectionSharesClusterAndCredentialsOnly(t *testing.T) {
	conn := func(md, secret map[string]string) string {
		tr, err := registry.Parse(sources.Params{Type: "kafka", Name: "t", Metadata: md, Secret: secret})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Config.Connection()
	}
	a := conn(map[string]string{"bootstrapServers": "k1:9092,k2:9092", "consumerGroup": "g1", "topic": "a", "sasl": "plain", "username": "u"}, map[string]string{"password": "pw1"})
	b := conn(map[string]string{"bootstrapServers": "k2:9092,k1:9092", "consumerGroup": "g2", "topic": "b", "sasl": "plaintext", "username": "u", "lagThreshold": "7"}, map[string]string{"password": "pw1"})
	c := conn(map[string]string{"bootstrapServers": "k1:9092,k2:9092", "consumerGroup": "g1", "topic": "a", "sasl": "plain", "username": "u"}, map[string]string{"password": "pw2"})
	if a != b {
		t.Errorf("same cluster and credentials should share a connection:\n%s\n%s", a, b)
	}
	if a == c {
		t.Errorf("a different password must not share a connection")
	}
	if strings.Contains(a, "pw1") {
		t.Errorf("connection key holds the password: %s", a)
	}
}

func TestCompute(t *testing.T) {
	const none = kafka.NoOffset
	p := func(start, end, committed, previous int64) kafka.Partition {
		return kafka.Partition{Start: start, End: end, Committed: committed, Previous: previous}
	}
	tests := []struct {
		name        string
		cfg         kafka.Config
		parts       []kafka.Partition
		wantValue   float64
		wantBacklog int64
	}{
		{name: "committed partitions", cfg: kafka.Config{LagThreshold: 100, OffsetResetPolicy: "latest"},
			parts: []kafka.Partition{p(0, 100, 40, none), p(0, 50, 50, none)}, wantValue: 60, wantBacklog: 60},
		{name: "a commit past the end is no negative lag", cfg: kafka.Config{LagThreshold: 100, OffsetResetPolicy: "latest"},
			parts: []kafka.Partition{p(0, 100, 40, none), p(0, 50, 70, none)}, wantValue: 60, wantBacklog: 60},
		{name: "retention removed messages are not backlog", cfg: kafka.Config{LagThreshold: 10, OffsetResetPolicy: "latest"},
			parts: []kafka.Partition{p(90, 100, 40, none)}, wantValue: 10, wantBacklog: 10},
		{name: "latest without commit", cfg: kafka.Config{LagThreshold: 10, OffsetResetPolicy: "latest"},
			parts: []kafka.Partition{p(0, 100, none, none), p(5, 5, none, none)}, wantValue: 1, wantBacklog: 1},
		{name: "earliest without commit", cfg: kafka.Config{LagThreshold: 100, OffsetResetPolicy: "earliest"},
			parts: []kafka.Partition{p(30, 100, none, none), p(5, 5, none, none)}, wantValue: 70, wantBacklog: 70},
		{name: "exact cap where KEDA's integer division lets 105 through at 10 partitions", cfg: kafka.Config{LagThreshold: 10, OffsetResetPolicy: "latest"},
			parts: tenPartitions(func(i int) kafka.Partition { return p(0, 100, 100-10-boolInt(i < 5), none) }), wantValue: 100, wantBacklog: 105},
		{name: "even distribution over 12 partitions", cfg: kafka.Config{LagThreshold: 10, OffsetResetPolicy: "latest", EnsureEvenDistributionOfPartitions: true},
			parts: append([]kafka.Partition{p(0, 45, 0, none)}, repeat(p(0, 0, 0, none), 11)...), wantValue: 60, wantBacklog: 45},
		{name: "persistent lag counts for activation only", cfg: kafka.Config{LagThreshold: 10, OffsetResetPolicy: "latest", ExcludePersistentLag: true},
			parts: []kafka.Partition{p(0, 100, 40, 40), p(0, 100, 90, 80)}, wantValue: 10, wantBacklog: 70},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cfg.Compute(tt.parts)
			if err != nil {
				t.Fatal(err)
			}
			if got.Value != tt.wantValue || got.Backlog != tt.wantBacklog {
				t.Fatalf("value, backlog = %v, %v; want %v, %v", got.Value, got.Backlog, tt.wantValue, tt.wantBacklog)
			}
		})
	}
}

// Offsets no broker can hold, and a backlog too large for an int64, are errors naming the
// partition: never a value, least of all 0.
func TestComputeRefusesImpossibleOffsets(t *testing.T) {
	const none = kafka.NoOffset
	p := func(id int32, start, end, committed, previous int64) kafka.Partition {
		return kafka.Partition{Topic: "orders", ID: id, Start: start, End: end, Committed: committed, Previous: previous}
	}
	tests := []struct {
		name    string
		cfg     kafka.Config
		parts   []kafka.Partition
		wantErr string
	}{
		{name: "end offsets of MaxInt64 on two partitions", cfg: kafka.Config{LagThreshold: 10, AllowIdleConsumers: true},
			parts:   []kafka.Partition{p(0, 0, math.MaxInt64, 5, none), p(1, 0, math.MaxInt64, 5, none)},
			wantErr: `topic "orders" partition 1: the backlog overflows int64`},
		{name: "overflow without committed offsets, earliest", cfg: kafka.Config{LagThreshold: 10, OffsetResetPolicy: "earliest"},
			parts:   []kafka.Partition{p(0, 0, math.MaxInt64, none, none), p(1, 0, 1, none, none)},
			wantErr: `topic "orders" partition 1: the backlog overflows int64`},
		{name: "overflow of persistent lag", cfg: kafka.Config{LagThreshold: 10, ExcludePersistentLag: true},
			parts:   []kafka.Partition{p(0, 0, math.MaxInt64, 0, 0), p(1, 0, math.MaxInt64, 0, 0)},
			wantErr: "overflows int64"},
		{name: "end offset -1", cfg: kafka.Config{LagThreshold: 10},
			parts: []kafka.Partition{p(3, none, -1, 0, none)}, wantErr: `topic "orders" partition 3: the broker answered end offset -1`},
		{name: "a negative start offset", cfg: kafka.Config{LagThreshold: 10},
			parts: []kafka.Partition{p(0, -2, 10, 0, none)}, wantErr: "start offset -2"},
		{name: "a start offset above the end offset", cfg: kafka.Config{LagThreshold: 10},
			parts: []kafka.Partition{p(0, 20, 10, 5, none)}, wantErr: "start offset 20 above end offset 10"},
		{name: "a committed offset below -1", cfg: kafka.Config{LagThreshold: 10},
			parts: []kafka.Partition{p(0, 0, 10, -7, none)}, wantErr: "committed offset -7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cfg.Compute(tt.parts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("value %v, err %v; want an error containing %q", got.Value, err, tt.wantErr)
			}
		})
	}
}

func tenPartitions(f func(int) kafka.Partition) []kafka.Partition {
	out := make([]kafka.Partition, 10)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

func repeat(p kafka.Partition, n int) []kafka.Partition {
	out := make([]kafka.Partition, n)
	for i := range out {
		out[i] = p
	}
	return out
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
