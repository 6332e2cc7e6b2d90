package metricsapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/rest"
	"k8s.io/metrics/pkg/apis/external_metrics/v1beta1"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/apiserver"

	"github.com/qscale/qscale/metricsapi"
)

// fakeValues serves fixed values and counts reads; it stands where the store stands.
type fakeValues struct {
	reads atomic.Int64
}

var readAt = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func (f *fakeValues) Value(w metricsapi.Workload, metric string) (int64, time.Time, error) {
	f.reads.Add(1)
	switch {
	case w == metricsapi.Workload{Namespace: "shop", Kind: "deployment", Name: "orders"} && metric == "qscale-lag":
		return 640500, readAt, nil
	case w.Name == "orders" && metric == "qscale-broken":
		return 0, time.Time{}, fmt.Errorf("%w: the source is failing", metricsapi.ErrNoValue)
	}
	return 0, time.Time{}, metricsapi.ErrUnknownMetric
}

// RawValue answers as Value does, with the raw figure of the steered value 640500m.
func (f *fakeValues) RawValue(w metricsapi.Workload, metric string) (int64, time.Time, error) {
	milli, at, err := f.Value(w, metric)
	if milli == 640500 {
		milli = 600000
	}
	return milli, at, err
}

func (f *fakeValues) MetricNames() []string { return []string{"qscale-broken", "qscale-lag"} }

// newHandler builds the real API server handler chain with a token authenticator ("hpa" may
// read, "nobody" may not) and no anonymous access.
func newHandler(t *testing.T, values metricsapi.Values, m *metricsapi.Metrics) http.Handler {
	t.Helper()
	return newHandlerWith(t, values, m, nil)
}

// newHandlerWith is newHandler with the server's configuration passed through adjust, when
// not nil, before the server is built.
func newHandlerWith(t *testing.T, values metricsapi.Values, m *metricsapi.Metrics, adjust func(*genericapiserver.Config)) http.Handler {
	t.Helper()
	cfg := genericapiserver.NewRecommendedConfig(apiserver.Codecs)
	cfg.LoopbackClientConfig = &rest.Config{}
	cfg.ExternalAddress = "localhost:443"
	cfg.Authentication.Authenticator = bearertoken.New(authenticator.TokenFunc(func(_ context.Context, token string) (*authenticator.Response, bool, error) {
		if token == "hpa" || token == "nobody" {
			return &authenticator.Response{User: &user.DefaultInfo{Name: token}}, true, nil
		}
		return nil, false, nil
	}))
	cfg.Authorization.Authorizer = authorizer.AuthorizerFunc(func(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
		if a.GetUser().GetName() == "hpa" {
			return authorizer.DecisionAllow, "", nil
		}
		return authorizer.DecisionDeny, "not allowed", nil
	})
	if adjust != nil {
		adjust(&cfg.Config)
	}
	srv, err := metricsapi.NewServer(&cfg.Config, metricsapi.NewProvider(values), m)
	if err != nil {
		t.Fatal(err)
	}
	return srv.GenericAPIServer.Handler
}

const metricPath = "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/"

func TestExternalMetricsAPI(t *testing.T) {
	values := &fakeValues{}
	reg := prometheus.NewRegistry()
	h := newHandler(t, values, metricsapi.NewMetrics(reg))
	tests := []struct {
		name      string
		path      string
		token     string
		wantCode  int
		wantValue string
		wantRaw   bool // the value's labels say it is raw
	}{
		{name: "the value of a metric", path: metricPath + "qscale-lag?labelSelector=qscale.io/kind=deployment,qscale.io/name=orders", token: "hpa", wantCode: 200, wantValue: "640500m"},
		{name: "the raw value", path: metricPath + "qscale-lag?labelSelector=qscale.io/kind=deployment,qscale.io/name=orders,qscale.io/raw=true", token: "hpa", wantCode: 200, wantValue: "600", wantRaw: true},
		{name: "raw=false is the HPA's value", path: metricPath + "qscale-lag?labelSelector=qscale.io/raw=false,qscale.io/kind=deployment,qscale.io/name=orders", token: "hpa", wantCode: 200, wantValue: "640500m"},
		{name: "raw neither true nor false", path: metricPath + "qscale-lag?labelSelector=qscale.io/kind=deployment,qscale.io/name=orders,qscale.io/raw=yes", token: "hpa", wantCode: 400},
		{name: "no fresh raw value", path: metricPath + "qscale-broken?labelSelector=qscale.io/kind=deployment,qscale.io/name=orders,qscale.io/raw=true", token: "hpa", wantCode: 503},
		{name: "unknown metric, raw", path: metricPath + "qscale-nosuch?labelSelector=qscale.io/kind=deployment,qscale.io/name=orders,qscale.io/raw=true", token: "hpa", wantCode: 404},
		{name: "raw needs the workload too", path: metricPath + "qscale-lag?labelSelector=qscale.io/raw=true", token: "hpa", wantCode: 400},
		{name: "raw, not authorised", path: metricPath + "qscale-lag?labelSelector=qscale.io/kind=deployment,qscale.io/name=orders,qscale.io/raw=true", token: "nobody", wantCode: 403},
		{name: "unknown metric", path: metricPath + "qscale-nosuch?labelSelector=qscale.io/kind=deployment,qscale.io/name=orders", token: "hpa", wantCode: 404},
		{name: "another workload", path: metricPath + "qscale-lag?labelSelector=qscale.io/kind=statefulset,qscale.io/name=orders", token: "hpa", wantCode: 404},
		{name: "no fresh value", path: metricPath + "qscale-broken?labelSelector=qscale.io/kind=deployment,qscale.io/name=orders", token: "hpa", wantCode: 503},
		{name: "selector without the workload", path: metricPath + "qscale-lag?labelSelector=app=orders", token: "hpa", wantCode: 400},
		{name: "anonymous", path: metricPath + "qscale-lag?labelSelector=qscale.io/kind=deployment,qscale.io/name=orders", wantCode: 401},
		{name: "not authorised", path: metricPath + "qscale-lag?labelSelector=qscale.io/kind=deployment,qscale.io/name=orders", token: "nobody", wantCode: 403},
		{name: "discovery", path: "/apis/external.metrics.k8s.io/v1beta1", token: "hpa", wantCode: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tt.path, nil)
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantCode {
				t.Fatalf("code %d, want %d: %s", rec.Code, tt.wantCode, rec.Body.String())
			}
			if tt.wantValue == "" {
				return
			}
			var list v1beta1.ExternalMetricValueList
			if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil {
				t.Fatal(err)
			}
			if len(list.Items) != 1 || list.Items[0].Value.String() != tt.wantValue || !list.Items[0].Timestamp.Time.Equal(readAt) {
				t.Fatalf("items %+v, want one of %s at %v", list.Items, tt.wantValue, readAt)
			}
			if raw := list.Items[0].MetricLabels["qscale.io/raw"] == "true"; raw != tt.wantRaw {
				t.Errorf("labels %v: raw %t, want %t", list.Items[0].MetricLabels, raw, tt.wantRaw)
			}
		})
	}
	for code, want := range map[string]float64{"200": 4, "401": 1, "403": 2, "404": 3, "503": 2, "400": 3} {
		if got := counterWithCode(t, reg, "qscale_metricsapi_requests_total", code); got != want {
			t.Errorf("qscale_metricsapi_requests_total{code=%q} = %v, want %v", code, got, want)
		}
	}
}

// counterWithCode reads the counter name{code} from reg.
func counterWithCode(t *testing.T, reg *prometheus.Registry, name, code string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if m.GetLabel()[0].GetValue() == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestDiscoveryListsEveryMetric(t *testing.T) {
	h := newHandler(t, &fakeValues{}, nil)
	req := httptest.NewRequest(http.MethodGet, "/apis/external.metrics.k8s.io/v1beta1", nil)
	req.Header.Set("Authorization", "Bearer hpa")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	for _, name := range []string{"qscale-lag", "qscale-broken"} {
		if !strings.Contains(rec.Body.String(), name) {
			t.Errorf("discovery does not list %s: %s", name, rec.Body.String())
		}
	}
}
