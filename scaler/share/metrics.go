package share

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of a sample sent or received, the result label of qscale_shared_samples_total.
const (
	resultSent     = "sent"     // posted to a peer, which took it
	resultFailed   = "failed"   // the post failed
	resultDropped  = "dropped"  // a peer's queue was full, and newer samples replaced it
	resultRecorded = "recorded" // received and recorded
	resultUnknown  = "unknown"  // received for a trigger this replica does not hold (yet)
	resultInvalid  = "invalid"  // received and refused
)

// Metrics are the Prometheus metrics of sharing; a nil *Metrics records nothing.
type Metrics struct {
	samples *prometheus.CounterVec
	age     prometheus.Histogram
}

// NewMetrics registers the metrics of sharing with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		samples: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "qscale_shared_samples_total",
			Help: "Samples that replicas sent each other, by direction (sent, received) and result (sent, failed, dropped; recorded, unknown, invalid).",
		}, []string{"direction", "result"}),
		age: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "qscale_shared_sample_age_seconds",
			Help:    "Age of a sample polled by another replica when this replica recorded it: the extra delay of a value not polled here.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
	}
	reg.MustRegister(m.samples, m.age)
	return m
}

func (m *Metrics) sent(result string, n int) {
	if m != nil {
		m.samples.WithLabelValues("sent", result).Add(float64(n))
	}
}

func (m *Metrics) received(result string) {
	if m != nil {
		m.samples.WithLabelValues("received", result).Inc()
	}
}

func (m *Metrics) aged(d time.Duration) {
	if m != nil {
		m.age.Observe(d.Seconds())
	}
}
