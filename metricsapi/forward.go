package metricsapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	"k8s.io/apiserver/pkg/endpoints/request"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/rest"
)

// OwnMetricPrefix begins the name of every metric qscale serves (qscale-<trigger>). A request
// for any other external metric is another adapter's, when qscale forwards.
const OwnMetricPrefix = "qscale-"

// DefaultForwardTimeout bounds a forwarded request when Forward.Timeout is zero: well inside
// the HPA controller's own patience, and short enough that a hung adapter costs each HPA
// sync at most this long.
const DefaultForwardTimeout = 10 * time.Second

// unlimitedForwards bounds the forwards at once of a server with no limit of requests in
// flight: half of the API server library's default limit.
const unlimitedForwards = 200

var externalMetricsVersion = schema.GroupVersion{Group: externalMetrics.Group, Version: "v1beta1"}

// Forward says where, and as whom, the external metrics qscale does not serve are forwarded.
type Forward struct {
	// URL is the other adapter's address, as ParseForwardURL accepts it. Required.
	URL *url.URL
	// Identity holds the credentials qscale presents to the other adapter: those of its own
	// kubeconfig or in-cluster ServiceAccount (a bearer token, a token file, a client
	// certificate, an exec plugin). Its host and certificate authorities are not used. Required.
	Identity *rest.Config
	// CAFile is a PEM bundle of the authorities that may sign the other adapter's serving
	// certificate; default: the system's roots.
	CAFile string
	// InsecureSkipTLSVerify accepts any certificate from the other adapter, as an APIService's
	// insecureSkipTLSVerify does. It excludes CAFile. Default false.
	InsecureSkipTLSVerify bool
	// Timeout bounds each forwarded request, from the first byte sent to the last received;
	// default DefaultForwardTimeout.
	Timeout time.Duration
	// Log receives the other adapter's outages and recoveries, one line each; default: none.
	Log logr.Logger
}

// ParseForwardURL reads the address of the adapter that qscale forwards to:
// https://host[:port], with no path, query, fragment or credentials. Plain http is refused:
// qscale's credentials travel with every forwarded request.
func ParseForwardURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, fmt.Errorf("not a URL: %w", err)
	case u.Scheme != "https":
		return nil, fmt.Errorf("%q: the scheme must be https (qscale's credentials go with each request)", u.Redacted())
	case u.Host == "":
		return nil, fmt.Errorf("%q has no host", u.Redacted())
	case u.User != nil:
		return nil, fmt.Errorf("%q holds credentials: qscale presents its own", u.Redacted())
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return nil, fmt.Errorf("%q: only https://host[:port], without a path, query or fragment", u.Redacted())
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// Forwarder passes the external metric requests that qscale does not serve to another
// adapter, as qscale, and returns that adapter's answer unchanged.
type Forwarder struct {
	base    *url.URL
	client  *http.Client
	timeout time.Duration
	metrics *Metrics
	log     logr.Logger
	down    atomic.Bool // the last forward found the adapter unreachable
}

// NewForwarder checks f and builds the client it forwards with; m, when not nil, counts the
// forwarded requests.
func NewForwarder(f Forward, m *Metrics) (*Forwarder, error) {
	switch {
	case f.URL == nil:
		return nil, errors.New("forward: no URL")
	case f.Identity == nil:
		return nil, errors.New("forward: no identity to present")
	case f.CAFile != "" && f.InsecureSkipTLSVerify:
		return nil, errors.New("forward: a CA file and skipping TLS verification exclude each other")
	case f.Timeout < 0:
		return nil, fmt.Errorf("forward: timeout %s is negative", f.Timeout)
	}
	if f.Timeout == 0 {
		f.Timeout = DefaultForwardTimeout
	}
	if f.Log.GetSink() == nil {
		f.Log = logr.Discard()
	}
	rt, err := rest.TransportFor(forwardConfig(f))
	if err != nil {
		return nil, fmt.Errorf("forward to %s: %w", f.URL, err)
	}
	// A redirect is answered as it is, never followed: the transport adds qscale's
	// credentials to every request it sends, so following one would hand them to wherever
	// the adapter points.
	noRedirects := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	client := &http.Client{Transport: rt, CheckRedirect: noRedirects}
	return &Forwarder{base: f.URL, client: client, timeout: f.Timeout, metrics: m, log: f.Log}, nil
}

// forwardConfig is the identity's client configuration aimed at the other adapter: its
// credentials kept, its API server and the authorities that vouch for it replaced.
func forwardConfig(f Forward) *rest.Config {
	c := rest.CopyConfig(f.Identity)
	c.Host, c.APIPath = f.URL.String(), ""
	c.TLSClientConfig = rest.TLSClientConfig{
		Insecure: f.InsecureSkipTLSVerify, CAFile: f.CAFile,
		CertFile: c.CertFile, KeyFile: c.KeyFile, CertData: c.CertData, KeyData: c.KeyData,
	}
	c.UserAgent = "qscale (forwarding external metrics)"
	return c
}

// Forwarding inserts f into cfg's handler chain right around the API handler: inside
// authentication and authorization, so that only a caller that qscale's delegated
// authorization lets read an external metric gets one forwarded, and inside the limit of
// requests in flight.
//
// A filter rather than a wrapper of the provider: the provider would get the metric's name
// and a parsed selector and have to decode and re-encode the other adapter's answer, losing
// its status and its content type; the filter passes the request's path and query through
// and the answer back byte for byte, and never reaches qscale's store.
func Forwarding(cfg *genericapiserver.Config, f *Forwarder) {
	chain := cfg.BuildHandlerChainFunc
	cfg.BuildHandlerChainFunc = func(h http.Handler, c *genericapiserver.Config) http.Handler {
		return chain(f.handler(h, c), c)
	}
}

// handler answers the requests forwardable names from the other adapter and the rest from
// local. It forwards at most half of the server's requests in flight at once, so that a slow
// adapter leaves room for qscale's own metrics (and unlimitedForwards when the server sets no
// limit).
func (f *Forwarder) handler(local http.Handler, c *genericapiserver.Config) http.Handler {
	limit := unlimitedForwards
	if c.MaxRequestsInFlight > 0 {
		limit = max(c.MaxRequestsInFlight/2, 1)
	}
	slots := make(chan struct{}, limit)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		metric, ok := forwardable(r)
		if !ok {
			local.ServeHTTP(w, r)
			return
		}
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
			f.forward(w, r, metric, c)
		default:
			err := apierrors.NewTooManyRequests(fmt.Sprintf("external metric %s: %d requests to %s already wait", metric, cap(slots), f.base), 1)
			f.count(responsewriters.ErrorNegotiated(err, c.Serializer, externalMetricsVersion, w, r))
		}
	})
}

// forwardable tells whether r reads an external metric that is not qscale's, and its name:
// a GET of /apis/external.metrics.k8s.io/v1beta1/namespaces/NS/METRIC.
func forwardable(r *http.Request) (string, bool) {
	info, ok := request.RequestInfoFrom(r.Context())
	if !ok || !info.IsResourceRequest || r.Method != http.MethodGet || info.APIGroup != externalMetricsVersion.Group ||
		info.Namespace == "" || info.Resource == "" || info.Name != "" || info.Subresource != "" {
		return "", false
	}
	return info.Resource, !strings.HasPrefix(info.Resource, OwnMetricPrefix)
}

// forward sends r's path and query to the other adapter and copies its answer to w. Only
// Accept goes with them: the caller's credentials and the aggregator's identity headers stay
// here, and qscale's own credentials go instead.
func (f *Forwarder) forward(w http.ResponseWriter, r *http.Request, metric string, c *genericapiserver.Config) {
	ctx, cancel := context.WithTimeout(r.Context(), f.timeout)
	defer cancel()
	u := *f.base
	u.Path, u.RawPath, u.RawQuery = r.URL.Path, r.URL.RawPath, r.URL.RawQuery
	out, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		f.count(responsewriters.ErrorNegotiated(apierrors.NewInternalError(err), c.Serializer, externalMetricsVersion, w, r))
		return
	}
	if accept := r.Header.Get("Accept"); accept != "" {
		out.Header.Set("Accept", accept)
	}
	resp, err := f.client.Do(out)
	if err != nil && r.Context().Err() != nil {
		return // the caller left (or the server's own timeout answered it): nobody to answer
	}
	if err != nil {
		f.unreachable(err)
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the URL is in the message already
		}
		msg := fmt.Sprintf("external metric %s: the adapter at %s did not answer: %v", metric, f.base, err)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			msg = fmt.Sprintf("external metric %s: the adapter at %s did not answer within %s", metric, f.base, f.timeout)
		}
		f.count(responsewriters.ErrorNegotiated(apierrors.NewServiceUnavailable(msg), c.Serializer, externalMetricsVersion, w, r))
		return
	}
	defer func() { _ = resp.Body.Close() }()
	f.reachable()
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(resp.StatusCode)
	f.count(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil {
		f.log.V(1).Info("an answer of the external metrics adapter was cut short", "url", f.base.String(), "metric", metric, "error", err.Error())
	}
}

func (f *Forwarder) count(code int) {
	if f.metrics != nil {
		f.metrics.forwarded.WithLabelValues(strconv.Itoa(code)).Inc()
	}
}

// unreachable and reachable log the other adapter's outages once each, not once a request:
// every HPA on its metrics asks again at each sync.
func (f *Forwarder) unreachable(err error) {
	if f.down.CompareAndSwap(false, true) {
		f.log.Error(err, "the external metrics adapter does not answer; its metrics fail until it does", "url", f.base.String())
	}
}

func (f *Forwarder) reachable() {
	if f.down.CompareAndSwap(true, false) {
		f.log.Info("the external metrics adapter answers again", "url", f.base.String())
	}
}
