package rabbitmq

import (
	"errors"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qscale/qscale/sources"
)

func TestAggregate(t *testing.T) {
	tests := []struct {
		name      string
		values    []float64
		operation string
		want      float64
	}{
		{"sum", []float64{1, 4, 2}, "sum", 7},
		{"max", []float64{1, 4, 2}, "max", 4},
		{"avg is not rounded", []float64{1, 4, 2}, "avg", 7.0 / 3},
		{"max of zeros", []float64{0, 0}, "max", 0},
		{"one value", []float64{5}, "avg", 5},
		{"no queue sums to 0", nil, "sum", 0},
		{"no queue has no max", nil, "max", 0},
		{"no queue averages to 0", nil, "avg", 0},
		{"max of the largest figures", []float64{math.MaxFloat64, math.MaxFloat64}, "max", math.MaxFloat64},
		{"a sum that overflows", []float64{math.MaxFloat64, math.MaxFloat64}, "sum", math.Inf(1)},
		{"an average whose sum overflows", []float64{math.MaxFloat64, math.MaxFloat64}, "avg", math.Inf(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := aggregate(tt.values, tt.operation)
			if wantOK := !math.IsInf(tt.want, 0); ok != wantOK || (ok && got != tt.want) {
				t.Errorf("aggregate(%v, %s) = %v, %v; want %v, %v", tt.values, tt.operation, got, ok, tt.want, wantOK)
			}
		})
	}
}

func TestMeasure(t *testing.T) {
	qs := []queueStats{
		{Name: "a", Messages: 10, Ready: 6, PublishRate: 2.5},
		{Name: "b", Messages: 4, Ready: 4, PublishRate: 0.5},
	}
	tests := []struct {
		name       string
		cfg        Config
		queues     []queueStats
		wantValue  float64
		wantActive bool
		wantErr    string
	}{
		{name: "depth counts unacknowledged", cfg: Config{Operation: "sum"}, queues: qs, wantValue: 14, wantActive: true},
		{name: "excludeUnacknowledged", cfg: Config{Operation: "sum", ExcludeUnacknowledged: true}, queues: qs, wantValue: 10, wantActive: true},
		{name: "max depth", cfg: Config{Operation: "max"}, queues: qs, wantValue: 10, wantActive: true},
		{name: "depth at the activation value is inactive", cfg: Config{Operation: "max", ActivationValue: 10}, queues: qs, wantValue: 10},
		{name: "rate", cfg: Config{Mode: ModeMessageRate, Operation: "sum"}, queues: qs, wantValue: 3, wantActive: true},
		{name: "avg rate", cfg: Config{Mode: ModeMessageRate, Operation: "avg"}, queues: qs, wantValue: 1.5, wantActive: true},
		{name: "backlog without publishes keeps a rate trigger active", cfg: Config{Mode: ModeMessageRate, Operation: "sum", ActivationValue: 5},
			queues: qs, wantValue: 3, wantActive: true},
		{name: "rate trigger inactive below both", cfg: Config{Mode: ModeMessageRate, Operation: "sum", ActivationValue: 20}, queues: qs, wantValue: 3},
		{name: "no queue", cfg: Config{Operation: "sum"}, wantValue: 0},
		{name: "rates whose sum overflows", cfg: Config{Mode: ModeMessageRate, Operation: "sum"},
			queues: []queueStats{{Name: "a", PublishRate: math.MaxFloat64}, {Name: "b", PublishRate: math.MaxFloat64}}, wantErr: "the sum of the publish rates of the 2 queues read overflows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cfg.measure(tt.queues)
			if tt.wantErr != "" {
				if got.Err == nil || got.Err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", got.Err, tt.wantErr)
				}
				return
			}
			if got.Value != tt.wantValue || got.Active != tt.wantActive || got.Err != nil {
				t.Errorf("value, active, err = %v, %v, %v; want %v, %v", got.Value, got.Active, got.Err, tt.wantValue, tt.wantActive)
			}
		})
	}
}

func TestMeasureCounts(t *testing.T) {
	aged := func(excludeUnacknowledged bool) Config {
		c := Config{Operation: "max", ExcludeUnacknowledged: excludeUnacknowledged}
		c.Age = 30 * time.Second
		return c
	}
	qs := []queueStats{
		{Name: "a", Messages: 10, Ready: 6, Published: 50, Consumed: 40, counted: true},
		{Name: "b", Messages: 4, Ready: 4, Published: 7, Consumed: 3, counted: true},
	}
	tests := []struct {
		name      string
		cfg       Config
		queues    []queueStats
		wantValue float64
		want      *sources.Counters
		wantErr   string
	}{
		{name: "a threshold trigger has none", cfg: Config{Operation: "sum"}, queues: qs, wantValue: 14},
		{name: "summed whatever the operation", cfg: aged(false), queues: qs, wantValue: 10,
			want: &sources.Counters{Backlog: 14, Produced: 57, Consumed: 43}},
		{name: "unacknowledged messages are backlog even when excluded from the value", cfg: aged(true), queues: qs, wantValue: 6,
			want: &sources.Counters{Backlog: 14, Produced: 57, Consumed: 43}},
		{name: "no queue", cfg: aged(false), want: &sources.Counters{}},
		{name: "a queue whose counts were not read", cfg: aged(false), queues: []queueStats{qs[0], {Name: "c", Messages: 1}},
			wantErr: "a queue read has no statistics listed (created or deleted between two requests?)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cfg.measure(tt.queues)
			if tt.wantErr != "" {
				if got.Err == nil || got.Err.Error() != tt.wantErr || got.Counters != nil {
					t.Fatalf("sample %+v, want the error %q", got, tt.wantErr)
				}
				return
			}
			if got.Err != nil || got.Value != tt.wantValue || !reflect.DeepEqual(got.Counters, tt.want) {
				t.Errorf("value, counters, err = %v, %+v, %v; want %v, %+v", got.Value, got.Counters, got.Err, tt.wantValue, tt.want)
			}
		})
	}
}

func TestNameFilter(t *testing.T) {
	exact := func(n string) queueMatcher { return queueMatcher{name: n} }
	regex := func(p string) queueMatcher {
		m, err := (&Config{QueueName: p, UseRegex: true}).matcher()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	tests := []struct {
		name string
		ms   []queueMatcher
		want string
	}{
		{"one exact name, quoted", []queueMatcher{exact("a.b+c")}, `^a\.b\+c$`},
		{"names and a pattern", []queueMatcher{exact("a"), regex("^jobs-"), exact("b")}, `^a$|(?:^jobs-)|^b$`},
		{"duplicates once", []queueMatcher{exact("a"), exact("a")}, `^a$`},
		{"too long for a request line lists the vhost whole", []queueMatcher{exact(strings.Repeat("x", maxFilterLen))}, ""},
		{"as many terms as pay", manyNames(maxFilterTerms), manyTerms(maxFilterTerms)},
		{"more terms cost more than they save: the vhost whole", manyNames(maxFilterTerms + 1), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nameFilter(tt.ms); got != tt.want {
				t.Errorf("nameFilter = %q, want %q", got, tt.want)
			}
		})
	}
}

// manyNames returns exact matchers of q0, q1, …; manyTerms the filter that selects them.
func manyNames(n int) []queueMatcher {
	ms := make([]queueMatcher, n)
	for i := range ms {
		ms[i] = queueMatcher{name: "q" + strconv.Itoa(i)}
	}
	return ms
}

func manyTerms(n int) string {
	terms := make([]string, n)
	for i := range terms {
		terms[i] = "^q" + strconv.Itoa(i) + "$"
	}
	return strings.Join(terms, "|")
}

func TestSelectQueues(t *testing.T) {
	listed := map[string]queueStats{"jobs-a": {Name: "jobs-a"}, "Jobs-B": {Name: "Jobs-B"}, "orders": {Name: "orders"}}
	tests := []struct {
		name    string
		cfg     Config
		want    []string
		wantErr error
	}{
		{name: "exact name", cfg: Config{QueueName: "orders"}, want: []string{"orders"}},
		{name: "exact names are case-sensitive", cfg: Config{QueueName: "Orders"}, wantErr: errNoQueue},
		{name: "regex ignores case, like RabbitMQ's filter", cfg: Config{QueueName: "^jobs-", UseRegex: true}, want: []string{"Jobs-B", "jobs-a"}},
		{name: "regex is unanchored", cfg: Config{QueueName: "rde", UseRegex: true}, want: []string{"orders"}},
		{name: "regex matching nothing", cfg: Config{QueueName: "^x", UseRegex: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := tt.cfg.matcher()
			if err != nil {
				t.Fatal(err)
			}
			qs, err := selectQueues(m, listed)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			var names []string
			for _, q := range qs {
				names = append(names, q.Name)
			}
			slices.Sort(names)
			if !slices.Equal(names, tt.want) {
				t.Errorf("selected %v, want %v", names, tt.want)
			}
		})
	}
}

func TestEndpoint(t *testing.T) {
	tests := []struct {
		host                        string
		wantBase, wantVhost, wantPw string
	}{
		{"amqp://rabbit", "amqp://rabbit:5672", "/", ""},
		{"amqp://rabbit:5673/", "amqp://rabbit:5673", "/", ""},
		{"amqp://u:p@rabbit/%2F", "amqp://rabbit:5672", "/", "p"},
		{"amqps://rabbit/orders", "amqps://rabbit:5671", "orders", ""},
		{"amqp://rabbit/a%2Fb", "amqp://rabbit:5672", "a/b", ""},
		{"http://rabbit:15672", "http://rabbit:15672", "/", ""},
		{"http://rabbit:15672/", "http://rabbit:15672", "/", ""},
		{"http://u:p@rabbit:15672/orders", "http://rabbit:15672", "orders", "p"},
		{"https://rabbit/mgmt/orders", "https://rabbit:443/mgmt", "orders", ""},
		{"http://rabbit:15672/mgmt/", "http://rabbit:15672/mgmt", "/", ""},
		{"http://[::1]:15672/%2F", "http://[::1]:15672", "/", ""},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			var h HostURL
			if err := h.UnmarshalText([]byte(tt.host)); err != nil || h.problem != "" {
				t.Fatalf("UnmarshalText: %v %s", err, h.problem)
			}
			e := h.endpoint()
			_, pw := h.user()
			if e.base() != tt.wantBase || e.vhost != tt.wantVhost || pw != tt.wantPw {
				t.Errorf("base, vhost, password = %q, %q, %q; want %q, %q, %q", e.base(), e.vhost, pw, tt.wantBase, tt.wantVhost, tt.wantPw)
			}
			if tt.wantPw != "" && strings.Contains(h.String(), ":"+tt.wantPw+"@") {
				t.Errorf("String() shows the password: %s", h.String())
			}
		})
	}
}

func TestMillis(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "1500", want: 1500 * time.Millisecond},
		{in: "2s", want: 2 * time.Second},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "0", wantErr: true},
		{in: "-5", wantErr: true},
		{in: "soon", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var m Millis
			err := m.UnmarshalText([]byte(tt.in))
			if (err != nil) != tt.wantErr || (!tt.wantErr && time.Duration(m) != tt.want) {
				t.Errorf("got %v, %v; want %v, error %v", time.Duration(m), err, tt.want, tt.wantErr)
			}
		})
	}
}

// A Decode that reports where each value came from (SetFromSecret) lets Validate refuse a
// host URL holding a password in metadata, and only there.
func TestHostWithPasswordOnlyFromTheSecret(t *testing.T) {
	const pw = "s3cret"
	tests := []struct {
		name       string
		host       string
		fromSecret bool
		wantErr    bool
	}{
		{name: "password in metadata", host: "amqp://u:" + pw + "@rabbit/", wantErr: true},
		{name: "password in the Secret", host: "amqp://u:" + pw + "@rabbit/", fromSecret: true},
		{name: "user without password in metadata", host: "amqp://u@rabbit/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{QueueName: "q", Protocol: "auto", Operation: "sum", PageSize: 100, TLS: "disable"}
			c.Host.SetFromSecret(tt.fromSecret)
			if err := c.Host.UnmarshalText([]byte(tt.host)); err != nil {
				t.Fatal(err)
			}
			problems := c.Validate()
			if (len(problems) > 0) != tt.wantErr {
				t.Fatalf("problems = %v, want error %v", problems, tt.wantErr)
			}
			for _, p := range problems {
				if p.Param != "host" || !strings.Contains(p.Problem, "holds a password") || strings.Contains(p.Problem, pw) {
					t.Errorf("problem = %v", p)
				}
			}
		})
	}
}
