package metricsapi

import (
	"net/http"

	genericapiserver "k8s.io/apiserver/pkg/server"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/apiserver"
)

// NewServer builds the aggregated API server around p from cfg, whose serving,
// authentication and authorization are already set up (delegated, in production). Every
// request passes through m's instrumentation first.
func NewServer(cfg *genericapiserver.Config, p *Provider, m *Metrics) (*apiserver.CustomMetricsAdapterServer, error) {
	Instrumented(cfg, m)
	c := &apiserver.Config{GenericConfig: cfg}
	return c.Complete(nil).New("qscale", nil, p)
}

// Instrumented makes m's instrumentation the outermost filter of cfg's handler chain.
func Instrumented(cfg *genericapiserver.Config, m *Metrics) {
	if m == nil {
		return
	}
	chain := cfg.BuildHandlerChainFunc
	cfg.BuildHandlerChainFunc = func(h http.Handler, c *genericapiserver.Config) http.Handler {
		return m.Instrument(chain(h, c))
	}
}
