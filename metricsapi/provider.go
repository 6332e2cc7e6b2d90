// Package metricsapi serves external.metrics.k8s.io/v1beta1 from qscale's store.
//
// Provider implements custom-metrics-apiserver's ExternalMetricsProvider over Values, a small
// read-only view of the store. Nothing here can reach a broker: an HPA request reads what the
// last poll recorded, or fails so that the HPA keeps the workload's size. Instrument wraps the
// server's handler chain with the request metrics. A Forwarder, when configured, passes the
// requests for every external metric that is not qscale's to another adapter (KEDA's metrics
// server, say), so that qscale can own the APIService beside it.
package metricsapi

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/metrics/pkg/apis/external_metrics"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"
)

// The labels of a metric's selector that name the workload, as qscale writes them in its HPAs.
const (
	LabelKind = "qscale.io/kind"
	LabelName = "qscale.io/name"
)

// Workload names a scaled workload.
type Workload struct{ Namespace, Kind, Name string }

// Errors that a Values implementation wraps.
var (
	// ErrUnknownMetric: the workload has no trigger with that metric name.
	ErrUnknownMetric = errors.New("no such metric")
	// ErrNoValue: the trigger exists but has no fresh value; the HPA must keep its size.
	ErrNoValue = errors.New("no fresh value")
)

// Values is the store as the metrics API sees it.
type Values interface {
	// Value returns the value to serve for a metric of a workload, in thousandths, and the
	// time of the poll it comes from. Errors wrap ErrUnknownMetric or ErrNoValue. It must not
	// block on I/O.
	Value(w Workload, metric string) (milli int64, at time.Time, err error)
	// MetricNames lists every metric name served, for discovery.
	MetricNames() []string
}

// Provider serves external metrics from Values.
type Provider struct{ values Values }

var _ provider.ExternalMetricsProvider = (*Provider)(nil)

// NewProvider returns a Provider reading from values.
func NewProvider(values Values) *Provider { return &Provider{values: values} }

var externalMetrics = schema.GroupResource{Group: "external.metrics.k8s.io", Resource: "externalmetrics"}

// GetExternalMetric implements provider.ExternalMetricsProvider. The selector must name the
// workload with qscale.io/kind and qscale.io/name, as the HPAs qscale writes do.
func (p *Provider) GetExternalMetric(_ context.Context, namespace string, selector labels.Selector, info provider.ExternalMetricInfo) (*external_metrics.ExternalMetricValueList, error) {
	w, err := workloadOf(namespace, selector)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	milli, at, err := p.values.Value(w, info.Metric)
	switch {
	case errors.Is(err, ErrUnknownMetric):
		return nil, provider.NewMetricNotFoundForSelectorError(externalMetrics, info.Metric, w.Name, selector)
	case errors.Is(err, ErrNoValue):
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("metric %s of %s %s/%s: %v", info.Metric, w.Kind, w.Namespace, w.Name, err))
	case err != nil:
		return nil, apierrors.NewInternalError(err)
	}
	return &external_metrics.ExternalMetricValueList{Items: []external_metrics.ExternalMetricValue{{
		MetricName:   info.Metric,
		MetricLabels: map[string]string{LabelKind: w.Kind, LabelName: w.Name},
		Timestamp:    metav1.NewTime(at),
		Value:        *resource.NewMilliQuantity(milli, resource.DecimalSI),
	}}}, nil
}

// ListAllExternalMetrics implements provider.ExternalMetricsProvider.
func (p *Provider) ListAllExternalMetrics() []provider.ExternalMetricInfo {
	names := p.values.MetricNames()
	out := make([]provider.ExternalMetricInfo, len(names))
	for i, n := range names {
		out[i] = provider.ExternalMetricInfo{Metric: n}
	}
	return out
}

// workloadOf reads the workload out of a selector such as
// qscale.io/kind=deployment,qscale.io/name=orders.
func workloadOf(namespace string, selector labels.Selector) (Workload, error) {
	w := Workload{Namespace: namespace}
	reqs, _ := selector.Requirements()
	for _, r := range reqs {
		if (r.Operator() != selection.Equals && r.Operator() != selection.DoubleEquals) || r.Values().Len() != 1 {
			continue
		}
		switch r.Key() {
		case LabelKind:
			w.Kind = r.Values().List()[0]
		case LabelName:
			w.Name = r.Values().List()[0]
		}
	}
	if w.Kind == "" || w.Name == "" {
		return w, fmt.Errorf("labelSelector must name the workload: %s=deployment|statefulset,%s=<name>", LabelKind, LabelName)
	}
	return w, nil
}
