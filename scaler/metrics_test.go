package scaler

import (
	"errors"
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

// series lists the series gathered from reg as "name{label values}", sorted.
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
			out = append(out, f.GetName()+"{"+strings.Join(values, ",")+"}")
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
			"qscale_desired_replicas{shop,deployment/orders}",
			"qscale_fallback_active{shop,deployment/orders,a,kafka}", "qscale_fallback_active{shop,deployment/orders,b,kafka}",
			"qscale_source_errors_total{shop,deployment/orders,b,kafka}",
			"qscale_trigger_active{shop,deployment/orders,a,kafka}", "qscale_trigger_value{shop,deployment/orders,a,kafka}",
		}},
		{name: "trigger b dropped", do: func() { st.Configure(orders, spec, []sources.Trigger{a}) }, want: []string{
			"qscale_desired_replicas{shop,deployment/orders}", "qscale_fallback_active{shop,deployment/orders,a,kafka}",
			"qscale_trigger_active{shop,deployment/orders,a,kafka}", "qscale_trigger_value{shop,deployment/orders,a,kafka}",
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
