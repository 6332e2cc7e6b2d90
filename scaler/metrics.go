package scaler

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/qscale/qscale/scaler/policy"
	"github.com/qscale/qscale/scaler/store"
	"github.com/qscale/qscale/sources"
)

// Metrics are the Prometheus metrics of the scaling loop. Setup makes them the Store's
// Observer, so that a trigger's series go with the trigger. A nil *Metrics records nothing.
//
// The gauges of each workload and trigger are not client_golang vectors: a vector keeps, for
// every series, a metric, its label pairs and its label values. Metrics keeps the latest
// values in tables instead and is itself the Collector that turns them into series when
// Prometheus scrapes: a workload's five series hold 340 bytes of heap rather than 2,900
// (BenchmarkMetricsHeld), 3 MiB rather than 28 at 10,000 workloads. The counters and the
// histogram stay vectors: their series are per type, or only for triggers that fail.
type Metrics struct {
	mu        sync.Mutex
	triggers  map[triggerKey]*triggerSeries
	workloads map[store.Target]*workloadSeries

	sourceErrors *prometheus.CounterVec
	sourcePanics *prometheus.CounterVec
	pollDuration *prometheus.HistogramVec
}

// triggerKey names a trigger of a workload as its series' labels do.
type triggerKey struct {
	target        store.Target
	trigger, kind string
}

// triggerSeries are the latest values of a trigger's gauges; a gauge that has no value yet
// has no series.
type triggerSeries struct {
	sampled, decided bool // whether value and active, and fallback, have a value
	value, active    float64
	fallback         float64
}

// workloadSeries are the latest values of a workload's gauges.
type workloadSeries struct {
	decided, known bool // whether desired, and invalid, have a value
	desired        float64
	invalid        float64
}

var (
	triggerLabels  = []string{"namespace", "target", "trigger", "type"}
	workloadLabels = []string{"namespace", "target"}

	triggerValueDesc = prometheus.NewDesc("qscale_trigger_value",
		"The latest value read for a trigger (lag, queue length or rate), before any steering of the HPA.", triggerLabels, nil)
	triggerActiveDesc = prometheus.NewDesc("qscale_trigger_active",
		"1 while a trigger is above its activation threshold.", triggerLabels, nil)
	fallbackActiveDesc = prometheus.NewDesc("qscale_fallback_active",
		"1 while a trigger is served its fallback value.", triggerLabels, nil)
	desiredReplicasDesc = prometheus.NewDesc("qscale_desired_replicas",
		"The replica count the scaling loop aims at for a workload.", workloadLabels, nil)
	configInvalidDesc = prometheus.NewDesc("qscale_config_invalid",
		"1 while a workload's qscale.io annotations are invalid, or the API server refuses the HPA they describe; the workload keeps its last valid configuration, if it had one.",
		workloadLabels, nil)
)

// NewMetrics creates the loop's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		triggers:  map[triggerKey]*triggerSeries{},
		workloads: map[store.Target]*workloadSeries{},
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
	reg.MustRegister(m, m.sourceErrors, m.sourcePanics, m.pollDuration)
	return m
}

var _ prometheus.Collector = (*Metrics)(nil)

// Describe implements prometheus.Collector for the gauges of workloads and triggers.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{triggerValueDesc, triggerActiveDesc, fallbackActiveDesc, desiredReplicasDesc, configInvalidDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: a series for every gauge that has a value.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for k, s := range m.triggers {
		target := targetLabel(k.target)
		if s.sampled {
			gauge(triggerValueDesc, s.value, k.target.Namespace, target, k.trigger, k.kind)
			gauge(triggerActiveDesc, s.active, k.target.Namespace, target, k.trigger, k.kind)
		}
		if s.decided {
			gauge(fallbackActiveDesc, s.fallback, k.target.Namespace, target, k.trigger, k.kind)
		}
	}
	for t, s := range m.workloads {
		if s.decided {
			gauge(desiredReplicasDesc, s.desired, t.Namespace, targetLabel(t))
		}
		if s.known {
			gauge(configInvalidDesc, s.invalid, t.Namespace, targetLabel(t))
		}
	}
}

func targetLabel(t store.Target) string { return t.Kind + "/" + t.Name }

func labels(t store.Target, tr sources.Trigger) prometheus.Labels {
	return prometheus.Labels{"namespace": t.Namespace, "target": targetLabel(t), "trigger": tr.Name, "type": tr.Type}
}

// trigger is the table entry of tr of t, created if missing; m.mu must be held.
func (m *Metrics) trigger(t store.Target, tr sources.Trigger) *triggerSeries {
	return entry(m.triggers, triggerKey{target: t, trigger: tr.Name, kind: tr.Type})
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

var _ store.Observer = (*Metrics)(nil)

// Sampled implements store.Observer: the value and activity of a trigger, or one more
// failed poll.
func (m *Metrics) Sampled(t store.Target, tr sources.Trigger, s sources.Sample, here bool) {
	if m == nil {
		return
	}
	if s.Err != nil {
		if here { // counted once, by the replica that polled
			m.sourceErrors.With(labels(t, tr)).Inc()
		}
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.trigger(t, tr)
	e.sampled, e.value, e.active = true, s.Value, boolValue(s.Active)
}

// Decided implements store.Observer: the desired replicas, and whether each trigger is in
// fallback.
func (m *Metrics) Decided(t store.Target, triggers []sources.Trigger, d policy.Decision) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	w := entry(m.workloads, t)
	w.decided, w.desired = true, float64(d.Desired)
	for i, tr := range triggers {
		if i < len(d.Metrics) {
			e := m.trigger(t, tr)
			e.decided, e.fallback = true, boolValue(d.Metrics[i].Fallback)
		}
	}
}

// ConfigInvalid records whether a workload's configuration is invalid; an unknown
// workload's series is deleted.
func (m *Metrics) ConfigInvalid(t store.Target, invalid, known bool) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !known {
		if w, ok := m.workloads[t]; ok {
			w.known = false
			m.forgetIfEmpty(t, w)
		}
		return
	}
	w := entry(m.workloads, t)
	w.known, w.invalid = true, boolValue(invalid)
}

// forgetIfEmpty deletes the table entry of t once none of its gauges has a value; m.mu must
// be held.
func (m *Metrics) forgetIfEmpty(t store.Target, w *workloadSeries) {
	if !w.decided && !w.known {
		delete(m.workloads, t)
	}
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
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dropped(t, triggers)
}

// dropped deletes the series of triggers of t; m.mu must be held.
func (m *Metrics) dropped(t store.Target, triggers []sources.Trigger) {
	for _, tr := range triggers {
		delete(m.triggers, triggerKey{target: t, trigger: tr.Name, kind: tr.Type})
		m.sourceErrors.Delete(labels(t, tr))
	}
}

// Removed implements store.Observer: the series of a forgotten workload are deleted.
func (m *Metrics) Removed(t store.Target, triggers []sources.Trigger) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dropped(t, triggers)
	if w, ok := m.workloads[t]; ok {
		w.decided = false
		m.forgetIfEmpty(t, w)
	}
}
