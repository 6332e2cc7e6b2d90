package main

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/spf13/pflag"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/qscale/qscale/metricsapi"
)

// forwardOptions are the flags that make qscale pass the external metrics it does not serve
// to another adapter (KEDA's metrics server, say), so that qscale can own the APIService
// v1beta1.external.metrics.k8s.io while workloads still scale through the other one.
type forwardOptions struct {
	url      string
	caFile   string
	insecure bool
	timeout  time.Duration

	parsed *url.URL // set by validate
}

func (o *forwardOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.url, "forward-external-metrics", "", "https://host[:port] of another external metrics adapter (e.g. https://keda-operator-metrics-apiserver.keda.svc:443): every external metric whose name does not begin with qscale- is read from it, as qscale's own identity, after the caller passed qscale's authentication and authorization (default: none, such metrics are not found)")
	fs.StringVar(&o.caFile, "forward-ca-file", "", "PEM bundle of the authorities that sign the serving certificate of --forward-external-metrics (default: the system's roots)")
	fs.BoolVar(&o.insecure, "forward-insecure-skip-tls-verify", false, "accept any serving certificate from --forward-external-metrics, as an APIService's insecureSkipTLSVerify does (qscale's credentials then go to whoever answers at that address)")
	fs.DurationVar(&o.timeout, "forward-timeout", metricsapi.DefaultForwardTimeout, "how long a forwarded request may take before qscale answers 503")
}

// validate checks the flags together and parses the URL; it is a usage error when they do
// not fit.
func (o *forwardOptions) validate() error {
	var errs []error
	if o.url != "" {
		u, err := metricsapi.ParseForwardURL(o.url)
		if err != nil {
			errs = append(errs, fmt.Errorf("--forward-external-metrics: %w", err))
		}
		o.parsed = u
	} else if o.caFile != "" || o.insecure {
		errs = append(errs, errors.New("--forward-ca-file and --forward-insecure-skip-tls-verify need --forward-external-metrics"))
	}
	if o.caFile != "" && o.insecure {
		errs = append(errs, errors.New("--forward-ca-file and --forward-insecure-skip-tls-verify exclude each other"))
	}
	if o.timeout <= 0 {
		errs = append(errs, fmt.Errorf("--forward-timeout %s must be positive", o.timeout))
	}
	return errors.Join(errs...)
}

// apply makes the metrics API server configured by cfg forward, when a URL was given, with
// the credentials of identity: qscale's own client configuration.
func (o *forwardOptions) apply(cfg *genericapiserver.Config, identity *rest.Config, m *metricsapi.Metrics) error {
	if o.parsed == nil {
		return nil
	}
	f, err := metricsapi.NewForwarder(metricsapi.Forward{
		URL: o.parsed, Identity: identity, CAFile: o.caFile, InsecureSkipTLSVerify: o.insecure,
		Timeout: o.timeout, Log: ctrl.Log.WithName("forward"),
	}, m)
	if err != nil {
		return fmt.Errorf("--forward-external-metrics: %w", err)
	}
	metricsapi.Forwarding(cfg, f)
	return nil
}
