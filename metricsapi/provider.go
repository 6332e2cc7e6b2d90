// Package metricsapi serves external.metrics.k8s.io/v1beta1 from qscale's store.
//
// Provider implements custom-metrics-apiserver's ExternalMetricsProvider over Values, a small
// read-only view of the store. The HPA reads a value steered so that its tolerance lands it
// on qscale's target; a read whose selector adds qscale.io/raw=true gets the trigger's own
// figure instead, for people and tools (qscale status). Nothing here can reach a broker: an HPA request reads what the
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

// The labels of a metric's selector that name the workload, as qscale writes them in its HPAs,
// and the one that asks for the raw value.
const (
	LabelKind = "qscale.io/kind"
	LabelName = "qscale.io/name"
	// LabelRaw=true asks for the trigger's raw value rather than the value served to the HPA.
	LabelRaw = "qscale.io/raw"
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
	// RawValue is Value before any steering of the HPA: the trigger's own value. It is
	// served when Value is, and fails as Value does.
	RawValue(w Workload, metric string) (milli int64, at time.Time, err error)
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
// workload with qscale.io/kind and qscale.io/name, as the HPAs qscale writes do; with
// qscale.io/raw=true as well, the value is the raw one.
func (p *Provider) GetExternalMetric(_ context.Context, namespace string, selector labels.Selector, info provider.ExternalMetricInfo) (*external_metrics.ExternalMetricValueList, error) {
	w, raw, err := workloadOf(namespace, selector)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	read, metricLabels := p.values.Value, map[string]string{LabelKind: w.Kind, LabelName: w.Name}
	if raw {
		read, metricLabels[LabelRaw] = p.values.RawValue, "true"
	}
	milli, at, err := read(w, info.Metric)
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
		MetricLabels: metricLabels,
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
// qscale.io/kind=deployment,qscale.io/name=orders, and whether it asks for the raw value
// (qscale.io/raw=true; false, or no such term, asks for the value the HPA reads).
func workloadOf(namespace string, selector labels.Selector) (w Workload, raw bool, err error) {
	w = Workload{Namespace: namespace}
	reqs, _ := selector.Requirements()
	for _, r := range reqs {
		if (r.Operator() != selection.Equals && r.Operator() != selection.DoubleEquals) || r.Values().Len() != 1 {
			continue
		}
		v := r.Values().List()[0]
		switch r.Key() {
		case LabelKind:
			w.Kind = v
		case LabelName:
			w.Name = v
		case LabelRaw:
			if v != "true" && v != "false" {
				return w, false, fmt.Errorf("%s must be true or false, got %q", LabelRaw, v)
			}
			raw = v == "true"
		}
	}
	if w.Kind == "" || w.Name == "" {
		return w, false, fmt.Errorf("labelSelector must name the workload: %s=deployment|statefulset,%s=<name>", LabelKind, LabelName)
	}
	return w, raw, nil
}
