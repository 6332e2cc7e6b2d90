package scaler

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/qscale/qscale/scaler/policy"
	"github.com/qscale/qscale/scaler/store"
	"github.com/qscale/qscale/sources"
)

// Metrics are the Prometheus metrics of the scaling loop. Setup makes them the Store's
// Observer, so that a trigger's series go with the trigger. A nil *Metrics records nothing.
type Metrics struct {
	triggerValue    *prometheus.GaugeVec
	triggerActive   *prometheus.GaugeVec
	desiredReplicas *prometheus.GaugeVec
	configInvalid   *prometheus.GaugeVec
	fallbackActive  *prometheus.GaugeVec
	sourceErrors    *prometheus.CounterVec
	sourcePanics    *prometheus.CounterVec
	pollDuration    *prometheus.HistogramVec
}

var triggerLabels = []string{"namespace", "target", "trigger", "type"}

// NewMetrics creates the loop's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		triggerValue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "qscale_trigger_value", Help: "The latest value read for a trigger (lag, queue length or rate), before any steering of the HPA.",
		}, triggerLabels),
		triggerActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "qscale_trigger_active", Help: "1 while a trigger is above its activation threshold.",
		}, triggerLabels),
		desiredReplicas: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "qscale_desired_replicas", Help: "The replica count the scaling loop aims at for a workload.",
		}, []string{"namespace", "target"}),
		configInvalid: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "qscale_config_invalid", Help: "1 while a workload's qscale.io annotations are invalid, or the API server refuses the HPA they describe; the workload keeps its last valid configuration, if it had one.",
		}, []string{"namespace", "target"}),
		fallbackActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "qscale_fallback_active", Help: "1 while a trigger is served its fallback value.",
		}, triggerLabels),
		sourceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "qscale_source_errors_total", Help: "Failed polls of a trigger.",
		}, triggerLabels),
		sourcePanics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "qscale_source_panics_total", Help: "Polls whose source failed unexpectedly on a broker's answer; each became that poll's error.",
		}, []string{"type"}),
		pollDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "qscale_source_poll_duration_seconds", Help: "Time of one batched poll of a broker connection.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"type"}),
	}
	reg.MustRegister(m.triggerValue, m.triggerActive, m.desiredReplicas, m.configInvalid, m.fallbackActive, m.sourceErrors, m.sourcePanics, m.pollDuration)
	return m
}

func labels(t store.Target, tr sources.Trigger) prometheus.Labels {
	return prometheus.Labels{"namespace": t.Namespace, "target": t.Kind + "/" + t.Name, "trigger": tr.Name, "type": tr.Type}
}

var _ store.Observer = (*Metrics)(nil)

// Sampled implements store.Observer: the value and activity of a trigger, or one more
// failed poll.
func (m *Metrics) Sampled(t store.Target, tr sources.Trigger, s sources.Sample, here bool) {
	if m == nil {
		return
	}
	l := labels(t, tr)
	if s.Err != nil {
		if here { // counted once, by the replica that polled
			m.sourceErrors.With(l).Inc()
		}
		return
	}
	m.triggerValue.With(l).Set(s.Value)
	active := 0.0
	if s.Active {
		active = 1
	}
	m.triggerActive.With(l).Set(active)
}

// Decided implements store.Observer: the desired replicas, and whether each trigger is in
// fallback.
func (m *Metrics) Decided(t store.Target, triggers []sources.Trigger, d policy.Decision) {
	if m == nil {
		return
	}
	m.desiredReplicas.With(prometheus.Labels{"namespace": t.Namespace, "target": t.Kind + "/" + t.Name}).Set(float64(d.Desired))
	for i, tr := range triggers {
		if i < len(d.Metrics) {
			v := 0.0
			if d.Metrics[i].Fallback {
				v = 1
			}
			m.fallbackActive.With(labels(t, tr)).Set(v)
		}
	}
}

// setConfigInvalid records whether a workload's configuration is invalid; an unknown
// workload's series is deleted.
func (m *Metrics) setConfigInvalid(t store.Target, invalid, known bool) {
	if m == nil {
		return
	}
	l := prometheus.Labels{"namespace": t.Namespace, "target": t.Kind + "/" + t.Name}
	if !known {
		m.configInvalid.Delete(l)
		return
	}
	v := 0.0
	if invalid {
		v = 1
	}
	m.configInvalid.With(l).Set(v)
}

func (m *Metrics) sourcePanicked(typ string) {
	if m != nil {
		m.sourcePanics.WithLabelValues(typ).Inc()
	}
}

func (m *Metrics) observePoll(typ string, seconds float64) {
	if m != nil {
		m.pollDuration.WithLabelValues(typ).Observe(seconds)
	}
}

// Dropped implements store.Observer: the series of triggers no longer configured are deleted.
func (m *Metrics) Dropped(t store.Target, triggers []sources.Trigger) {
	if m == nil {
		return
	}
	for _, tr := range triggers {
		l := labels(t, tr)
		m.triggerValue.Delete(l)
		m.triggerActive.Delete(l)
		m.fallbackActive.Delete(l)
		m.sourceErrors.Delete(l)
	}
}

// Removed implements store.Observer: the series of a forgotten workload are deleted.
func (m *Metrics) Removed(t store.Target, triggers []sources.Trigger) {
	if m == nil {
		return
	}
	m.Dropped(t, triggers)
	m.desiredReplicas.Delete(prometheus.Labels{"namespace": t.Namespace, "target": t.Kind + "/" + t.Name})
}
