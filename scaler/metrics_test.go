package scaler

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/qscale/qscale/scaler/policy"
	"github.com/qscale/qscale/scaler/store"
	"github.com/qscale/qscale/sources"
	"github.com/qscale/qscale/sources/kafka"
)

// series lists the series gathered from reg as "name{label values} value", sorted.
func series(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var values []string
			for _, l := range m.GetLabel() {
				values = append(values, l.GetValue())
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			out = append(out, fmt.Sprintf("%s{%s} %g", f.GetName(), strings.Join(values, ","), v))
		}
	}
	slices.Sort(out)
	return out
}

// The Metrics, as the Store's Observer, follow its samples and decisions, and delete the
// series of a trigger that goes and of a workload that goes.
func TestMetricsFollowTheStore(t *testing.T) {
	reg := prometheus.NewRegistry()
	st := store.New(time.Now, store.Options{Observer: NewMetrics(reg)})
	parse := func(name string) sources.Trigger {
		tr, err := sources.Registry{"kafka": kafka.Kind}.Parse(sources.Params{Type: "kafka", Name: name,
			Metadata: map[string]string{"bootstrapServers": "k:9092", "consumerGroup": "g", "topic": name}})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	a, b := parse("a"), parse("b")
	orders := store.Target{Namespace: "shop", Kind: store.KindDeployment, Name: "orders"}
	spec := policy.Spec{MaxReplicas: 10, PollingInterval: time.Minute, FallbackFailures: 3}
	st.Configure(orders, spec, []sources.Trigger{a, b})
	st.Record(orders, a, sources.Sample{Value: 5, Active: true}, time.Now())
	st.Record(orders, b, sources.Sample{Err: errors.New("down")}, time.Now())
	st.Decide(orders, store.Replicas{Spec: 1, Status: 1})
	steps := []struct {
		name string
		do   func()
		want []string
	}{
		{name: "sampled and decided", do: func() {}, want: []string{
			"qscale_desired_replicas{shop,deployment/orders} 1",
			"qscale_fallback_active{shop,deployment/orders,a,kafka} 0", "qscale_fallback_active{shop,deployment/orders,b,kafka} 0",
			"qscale_source_errors_total{shop,deployment/orders,b,kafka} 1",
			"qscale_trigger_active{shop,deployment/orders,a,kafka} 1", "qscale_trigger_value{shop,deployment/orders,a,kafka} 5",
		}},
		{name: "sampled again", do: func() {
			st.Record(orders, a, sources.Sample{Value: 0.5}, time.Now())
			st.Record(orders, b, sources.Sample{Err: errors.New("down")}, time.Now())
		}, want: []string{
			"qscale_desired_replicas{shop,deployment/orders} 1",
			"qscale_fallback_active{shop,deployment/orders,a,kafka} 0", "qscale_fallback_active{shop,deployment/orders,b,kafka} 0",
			"qscale_source_errors_total{shop,deployment/orders,b,kafka} 2",
			"qscale_trigger_active{shop,deployment/orders,a,kafka} 0", "qscale_trigger_value{shop,deployment/orders,a,kafka} 0.5",
		}},
		{name: "trigger b dropped", do: func() { st.Configure(orders, spec, []sources.Trigger{a}) }, want: []string{
			"qscale_desired_replicas{shop,deployment/orders} 1", "qscale_fallback_active{shop,deployment/orders,a,kafka} 0",
			"qscale_trigger_active{shop,deployment/orders,a,kafka} 0", "qscale_trigger_value{shop,deployment/orders,a,kafka} 0.5",
		}},
		{name: "workload removed", do: func() { st.Remove(orders) }, want: nil},
	}
	for _, s := range steps {
		s.do()
		if got := series(t, reg); !slices.Equal(got, s.want) {
			t.Errorf("%s: series\n%s\nwant\n%s", s.name, strings.Join(got, "\n"), strings.Join(s.want, "\n"))
		}
	}
}

// BenchmarkMetricsHeld reports the heap the metrics of 10,000 workloads hold, each with one
// trigger sampled and decided and a valid configuration: five series a workload.
func BenchmarkMetricsHeld(b *testing.B) {
	const workloads = 10000
	tr := sources.Trigger{Type: "kafka", Name: "lag"}
	decision := policy.Decision{Desired: 3, Metrics: make([]policy.Metric, 1)}
	var held float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m := NewMetrics(prometheus.NewRegistry())
		for i := range workloads {
			t := store.Target{Namespace: fmt.Sprintf("s%03d", i/100), Kind: store.KindDeployment, Name: fmt.Sprintf("w%05d", i)}
			m.Sampled(t, tr, sources.Sample{Value: 3}, true)
			m.Decided(t, []sources.Trigger{tr}, decision)
			m.ConfigInvalid(t, false, true)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		held = float64(after.HeapAlloc) - float64(before.HeapAlloc)
		runtime.KeepAlive(m)
	}
	b.ReportMetric(held/workloads, "heap-B/workload")
	b.ReportMetric(held/(1<<20), "heap-MiB")
}
