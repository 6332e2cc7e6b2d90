// Command othermetrics is a second external metrics adapter for qscale's end-to-end tests,
// standing where KEDA's metrics server stands beside qscale: an aggregated API server built on
// custom-metrics-apiserver, with delegated authentication and authorization against the
// cluster, serving one metric (--metric) with one value (--value) in every namespace. Each
// read is logged with the user who made it, so that a test can tell who reached it.
package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/metrics/pkg/apis/external_metrics"
	basecmd "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		log.Fatalf("othermetrics: %v", err)
	}
}

func run(args []string) error {
	adapter := &basecmd.AdapterBase{Name: "othermetrics"}
	p := &oneMetric{}
	fs := adapter.Flags()
	fs.StringVar(&p.name, "metric", "other-queue", "name of the one external metric served")
	fs.Int64Var(&p.value, "value", 0, "its value, in every namespace and for every selector")
	if err := fs.Parse(args); err != nil {
		return err
	}
	adapter.WithExternalMetrics(p)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return adapter.Run(ctx)
}

// oneMetric serves one external metric with a fixed value.
type oneMetric struct {
	name  string
	value int64
}

var _ provider.ExternalMetricsProvider = (*oneMetric)(nil)

var externalMetrics = schema.GroupResource{Group: "external.metrics.k8s.io", Resource: "externalmetrics"}

// GetExternalMetric implements provider.ExternalMetricsProvider.
func (m *oneMetric) GetExternalMetric(ctx context.Context, namespace string, selector labels.Selector, info provider.ExternalMetricInfo) (*external_metrics.ExternalMetricValueList, error) {
	reader := "unknown"
	if u, ok := request.UserFrom(ctx); ok {
		reader = u.GetName()
	}
	log.Printf("read %s in namespace %s by %s", info.Metric, namespace, reader)
	if info.Metric != m.name {
		return nil, provider.NewMetricNotFoundForSelectorError(externalMetrics, info.Metric, namespace, selector)
	}
	return &external_metrics.ExternalMetricValueList{Items: []external_metrics.ExternalMetricValue{{
		MetricName: m.name,
		Timestamp:  metav1.NewTime(time.Now()),
		Value:      *resource.NewQuantity(m.value, resource.DecimalSI),
	}}}, nil
}

// ListAllExternalMetrics implements provider.ExternalMetricsProvider.
func (m *oneMetric) ListAllExternalMetrics() []provider.ExternalMetricInfo {
	return []provider.ExternalMetricInfo{{Metric: m.name}}
}
