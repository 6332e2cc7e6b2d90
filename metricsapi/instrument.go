package metricsapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus metrics of the metrics API.
type Metrics struct {
	requests  *prometheus.CounterVec
	duration  prometheus.Histogram
	forwarded *prometheus.CounterVec
}

// NewMetrics creates the metrics API's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "qscale_metricsapi_requests_total", Help: "Requests to the external metrics API, by HTTP status code.",
		}, []string{"code"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "qscale_metricsapi_request_duration_seconds", Help: "Time to answer a request to the external metrics API.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "qscale_metricsapi_forwarded_requests_total",
			Help: "Requests for external metrics that qscale does not serve, forwarded to another adapter, by the HTTP status code answered.",
		}, []string{"code"}),
	}
	reg.MustRegister(m.requests, m.duration, m.forwarded)
	return m
}

// Instrument wraps an API server handler (the outermost filter of its chain) so that every
// request is counted by status code, refused ones (401, 403) included.
func (m *Metrics) Instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		m.requests.WithLabelValues(strconv.Itoa(rec.code)).Inc()
		m.duration.Observe(time.Since(start).Seconds())
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// Flush passes through, for watch-style responses.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
