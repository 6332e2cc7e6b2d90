package sources_test

import (
	"context"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/qscale/qscale/sources"
	"github.com/qscale/qscale/sources/internal/sourcetest"
)

// agedConfig is a trigger config that supports backlog-age scaling, with two threshold
// parameters.
type agedConfig struct {
	sources.BacklogAge
	Conn  string  `param:"conn,required"`
	Value float64 `param:"value,default=10,positive"`
	Floor float64 `param:"floor"`
}

func (c *agedConfig) Connection() string             { return c.Conn }
func (c *agedConfig) Target() float64                { return c.Value }
func (c *agedConfig) Validate() []sources.FieldError { return nil }

// scriptedSource answers every config with the same sample.
type scriptedSource struct{ s sources.Sample }

func (s scriptedSource) Poll(_ context.Context, cfgs []*agedConfig) []sources.Sample {
	out := make([]sources.Sample, len(cfgs))
	for i := range out {
		out[i] = s.s
	}
	return out
}

func (scriptedSource) Close() error { return nil }

// agedRegistry is a registry of one type, "aged", whose sources answer s.
func agedRegistry(s sources.Sample) sources.Registry {
	return sources.Registry{"aged": sources.NewKind(func(*agedConfig) (scriptedSource, error) {
		return scriptedSource{s}, nil
	}, "value", "floor")}
}

func TestBacklogAgeParameters(t *testing.T) {
	md := func(kv ...string) map[string]string {
		m := map[string]string{"conn": "c"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name    string
		md      map[string]string
		secret  map[string]string
		want    sources.BacklogAge
		wantOn  bool
		wantErr []string // one per problem
	}{
		{name: "not set: the trigger scales on its threshold", md: md("value", "5")},
		{name: "targetBacklogAge alone", md: md("targetBacklogAge", "30s"), want: sources.BacklogAge{Age: 30 * time.Second}, wantOn: true},
		{name: "with replicaThroughput", md: md("targetBacklogAge", "2m", "replicaThroughput", "40.5"),
			want: sources.BacklogAge{Age: 2 * time.Minute, ReplicaThroughput: 40.5}, wantOn: true},
		{name: "exactly one second", md: md("targetBacklogAge", "1s"), want: sources.BacklogAge{Age: time.Second}, wantOn: true},
		{name: "from the Secret", md: md(), secret: map[string]string{"targetBacklogAge": "45s"}, want: sources.BacklogAge{Age: 45 * time.Second}, wantOn: true},
		{name: "below a second", md: md("targetBacklogAge", "999ms"), wantErr: []string{`targetBacklogAge: must be at least 1s, got "999ms"`}},
		{name: "zero", md: md("targetBacklogAge", "0s"), wantErr: []string{`targetBacklogAge: must be at least 1s, got "0s"`}},
		{name: "negative", md: md("targetBacklogAge", "-30s"), wantErr: []string{`targetBacklogAge: must be at least 1s, got "-30s"`}},
		{name: "not a duration", md: md("targetBacklogAge", "30"), wantErr: []string{`targetBacklogAge: must be a duration such as 500ms or 10s, got "30"`}},
		{name: "replicaThroughput zero", md: md("targetBacklogAge", "30s", "replicaThroughput", "0"), wantErr: []string{`replicaThroughput: must be greater than 0, got "0"`}},
		{name: "replicaThroughput negative", md: md("targetBacklogAge", "30s", "replicaThroughput", "-2"), wantErr: []string{`replicaThroughput: must be greater than 0, got "-2"`}},
		{name: "replicaThroughput not a number", md: md("targetBacklogAge", "30s", "replicaThroughput", "Inf"), wantErr: []string{`replicaThroughput: must be a number, got "Inf"`}},
		{name: "replicaThroughput without targetBacklogAge", md: md("replicaThroughput", "40"),
			wantErr: []string{"replicaThroughput: has no effect without targetBacklogAge"}},
		{name: "with a threshold", md: md("targetBacklogAge", "30s", "value", "5"),
			wantErr: []string{"targetBacklogAge: cannot be set with value: targetBacklogAge replaces it"}},
		{name: "with a threshold from the Secret", md: md("targetBacklogAge", "30s"), secret: map[string]string{"floor": "2"},
			wantErr: []string{"targetBacklogAge: cannot be set with floor: targetBacklogAge replaces it"}},
		{name: "with both thresholds", md: md("targetBacklogAge", "30s", "value", "5", "floor", "1"),
			wantErr: []string{"targetBacklogAge: cannot be set with value and floor: targetBacklogAge replaces them"}},
		{name: "reported with the other problems", md: md("targetBacklogAge", "30s", "value", "0", "conn", ""),
			wantErr: []string{"conn: is required", "value: must be greater than 0", "targetBacklogAge: cannot be set with value"}},
	}
	reg := agedRegistry(sources.Sample{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := reg.Parse(sources.Params{Type: "aged", Name: "orders", Metadata: tt.md, Secret: tt.secret})
			sourcetest.CheckConfigError(t, err, "orders", tt.wantErr)
			if len(tt.wantErr) > 0 {
				return
			}
			got, on := sources.BacklogAgeOf(tr.Config)
			if got != tt.want || on != tt.wantOn {
				t.Errorf("BacklogAgeOf = %+v, %v; want %+v, %v", got, on, tt.want, tt.wantOn)
			}
		})
	}
}

func TestBacklogAgeOfAConfigWithoutIt(t *testing.T) {
	if got, on := sources.BacklogAgeOf(&fakeConfig{}); on || got != (sources.BacklogAge{}) {
		t.Errorf("BacklogAgeOf = %+v, %v; want nothing", got, on)
	}
}

func TestDecodeReadsEmbeddedParameters(t *testing.T) {
	got := sources.Names(&agedConfig{})
	want := []string{"targetBacklogAge", "replicaThroughput", "conn", "value", "floor"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Names = %v, want %v", got, want)
	}
}

func TestPoolChecksCounters(t *testing.T) {
	counters := func(backlog, produced, consumed float64) *sources.Counters {
		return &sources.Counters{Backlog: backlog, Produced: produced, Consumed: consumed}
	}
	aged := map[string]string{"conn": "c", "targetBacklogAge": "30s"}
	plain := map[string]string{"conn": "c"}
	tests := []struct {
		name     string
		md       map[string]string
		sample   sources.Sample
		wantNone bool // the sample passes without its counters
		wantErr  string
	}{
		{name: "counters pass", md: aged, sample: sources.Sample{Value: 3, Counters: counters(3, 10, 7)}},
		{name: "zero counts pass", md: aged, sample: sources.Sample{Counters: counters(0, 0, 0)}},
		{name: "a threshold trigger needs none", md: plain, sample: sources.Sample{Value: 3}},
		{name: "nor gets any", md: plain, sample: sources.Sample{Value: 3, Counters: counters(3, 10, 7)}, wantNone: true},
		{name: "missing counters", md: aged, sample: sources.Sample{Value: 3}, wantErr: "no message counts for a trigger with targetBacklogAge"},
		{name: "negative backlog", md: aged, sample: sources.Sample{Counters: counters(-1, 10, 7)}, wantErr: "backlog -1, not a finite number"},
		{name: "NaN produced", md: aged, sample: sources.Sample{Counters: counters(0, math.NaN(), 7)}, wantErr: "produced count NaN"},
		{name: "infinite consumed", md: aged, sample: sources.Sample{Counters: counters(0, 10, math.Inf(1))}, wantErr: "consumed count +Inf"},
		{name: "a bad value is reported first", md: aged, sample: sources.Sample{Value: -1, Counters: counters(0, 10, 7)}, wantErr: "source returned -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := agedRegistry(tt.sample)
			tr := sourcetest.Parse(t, reg, "aged", tt.md, nil)
			got := sourcetest.NewPool(t, reg).Poll(context.Background(), []sources.Trigger{tr})[0]
			if tt.wantErr == "" {
				if got.Err != nil {
					t.Fatalf("unexpected error: %v", got.Err)
				}
				want := tt.sample.Counters
				if tt.wantNone {
					want = nil
				}
				if !reflect.DeepEqual(got.Counters, want) {
					t.Errorf("counters %+v, want %+v", got.Counters, want)
				}
				return
			}
			if got.Err == nil || !strings.Contains(got.Err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", got.Err, tt.wantErr)
			}
			if got.Counters != nil {
				t.Errorf("an error sample carries counters %+v", got.Counters)
			}
		})
	}
}
