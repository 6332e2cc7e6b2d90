package metricsapi_test

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/rest"

	"github.com/qscale/qscale/metricsapi"
)

// seenRequest is what reached the other adapter.
type seenRequest struct {
	path, query, authorization, accept, remoteUser string
}

// otherAdapter stands for the adapter qscale forwards to (KEDA's metrics server, say): a TLS
// server that records each request and answers with answer.
type otherAdapter struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []seenRequest
}

func newOtherAdapter(t *testing.T, answer http.HandlerFunc) *otherAdapter {
	t.Helper()
	a := &otherAdapter{}
	a.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.seen = append(a.seen, seenRequest{
			path: r.URL.EscapedPath(), query: r.URL.RawQuery, authorization: r.Header.Get("Authorization"),
			accept: r.Header.Get("Accept"), remoteUser: r.Header.Get("X-Remote-User"),
		})
		a.mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *otherAdapter) requests() []seenRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]seenRequest(nil), a.seen...)
}

// caFile writes the adapter's self-signed certificate where a CA file is expected.
func (a *otherAdapter) caFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "adapter-ca.crt")
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.srv.Certificate().Raw})
	if err := os.WriteFile(path, block, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// forward is the Forward to a, trusting its certificate, as a qscale holding the token
// "qscale-token".
func (a *otherAdapter) forward(t *testing.T) metricsapi.Forward {
	t.Helper()
	u, err := metricsapi.ParseForwardURL(a.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return metricsapi.Forward{URL: u, Identity: &rest.Config{BearerToken: "qscale-token"}, CAFile: a.caFile(t)}
}

// forwardingHandler is the real handler chain of newHandler, forwarding as f says.
// maxInFlight, when not 0, is the server's limit of requests in flight.
func forwardingHandler(t *testing.T, f metricsapi.Forward, m *metricsapi.Metrics, maxInFlight int) http.Handler {
	t.Helper()
	fw, err := metricsapi.NewForwarder(f, m)
	if err != nil {
		t.Fatal(err)
	}
	return newHandlerWith(t, &fakeValues{}, m, func(cfg *genericapiserver.Config) {
		if maxInFlight != 0 {
			cfg.MaxRequestsInFlight = maxInFlight
		}
		metricsapi.Forwarding(cfg, fw)
	})
}

// get sends GET path to h as the holder of token (none: anonymously).
func get(h http.Handler, path, token string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

const (
	ownMetric   = metricPath + "qscale-lag?labelSelector=qscale.io/kind=deployment,qscale.io/name=orders"
	otherMetric = metricPath + "s0-rabbitmq-orders?labelSelector=scaledobject.keda.sh%2Fname%3Dorders"
	otherList   = `{"kind":"ExternalMetricValueList","apiVersion":"external.metrics.k8s.io/v1beta1","metadata":{},"items":[{"metricName":"s0-rabbitmq-orders","metricLabels":null,"timestamp":"2026-11-23T12:00:00Z","value":"42"}]}`
)

func TestForwardPassesOtherMetricsThrough(t *testing.T) {
	adapter := newOtherAdapter(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/s0-rabbitmq-orders") {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(otherList))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`))
	})
	reg := prometheus.NewRegistry()
	h := forwardingHandler(t, adapter.forward(t), metricsapi.NewMetrics(reg), 0)

	t.Run("the adapter's answer, as it is", func(t *testing.T) {
		// An identity header as the aggregator sends it: it names the caller to qscale alone.
		rec := get(h, otherMetric, "hpa", "Accept", "application/json", "X-Remote-User", "system:admin")
		if rec.Code != http.StatusOK || rec.Body.String() != otherList || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("answer %d %q %s, want 200 application/json %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body, otherList)
		}
		seen := adapter.requests()
		want := seenRequest{
			path:  "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/s0-rabbitmq-orders",
			query: "labelSelector=scaledobject.keda.sh%2Fname%3Dorders", authorization: "Bearer qscale-token", accept: "application/json",
		}
		if len(seen) != 1 || seen[0] != want {
			t.Fatalf("the adapter saw %+v, want one %+v", seen, want)
		}
	})
	t.Run("the adapter's error, as it is", func(t *testing.T) {
		rec := get(h, metricPath+"s1-gone?labelSelector=x%3Dy", "hpa")
		if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), `"reason":"NotFound"`) {
			t.Fatalf("answer %d %s, want the adapter's 404", rec.Code, rec.Body)
		}
	})
	for code, want := range map[string]float64{"200": 1, "404": 1} {
		if got := counterWithCode(t, reg, "qscale_metricsapi_forwarded_requests_total", code); got != want {
			t.Errorf("qscale_metricsapi_forwarded_requests_total{code=%q} = %v, want %v", code, got, want)
		}
	}
}

// Nothing reaches the other adapter but authorised reads of metrics that are not qscale's.
func TestForwardKeepsToOtherMetricsAndAuthorisedCallers(t *testing.T) {
	adapter := newOtherAdapter(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(otherList)) })
	h := forwardingHandler(t, adapter.forward(t), nil, 0)
	tests := []struct {
		name, path, token string
		wantCode          int
	}{
		{name: "a metric of qscale's", path: ownMetric, token: "hpa", wantCode: 200},
		{name: "a metric qscale does not have, with qscale's prefix", path: metricPath + "qscale-nosuch?labelSelector=qscale.io/kind=deployment,qscale.io/name=orders", token: "hpa", wantCode: 404},
		{name: "a metric of qscale's with a selector qscale refuses", path: metricPath + "qscale-lag?labelSelector=app=orders", token: "hpa", wantCode: 400},
		{name: "anonymous", path: otherMetric, wantCode: 401},
		{name: "not authorised", path: otherMetric, token: "nobody", wantCode: 403},
		{name: "discovery", path: "/apis/external.metrics.k8s.io/v1beta1", token: "hpa", wantCode: 200},
		{name: "a namespace, not a metric", path: "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop", token: "hpa", wantCode: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if rec := get(h, tt.path, tt.token); rec.Code != tt.wantCode {
				t.Fatalf("code %d, want %d: %s", rec.Code, tt.wantCode, rec.Body)
			}
			if seen := adapter.requests(); len(seen) != 0 {
				t.Fatalf("the adapter was asked %+v", seen)
			}
		})
	}
}

func TestForwardToAnAdapterThatIsDown(t *testing.T) {
	adapter := newOtherAdapter(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(otherList)) })
	f := adapter.forward(t)
	var logged logLines
	f.Log = logged.logger()
	reg := prometheus.NewRegistry()
	h := forwardingHandler(t, f, metricsapi.NewMetrics(reg), 0)
	adapter.srv.Close()

	for range 2 {
		rec := get(h, otherMetric, "hpa")
		body := rec.Body.String()
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(body, "external metric s0-rabbitmq-orders: the adapter at https://127.0.0.1:") ||
			!strings.Contains(body, "did not answer: dial tcp") || !strings.Contains(body, "connection refused") {
			t.Fatalf("answer %d %s, want 503 naming the metric, the adapter and why", rec.Code, body)
		}
		if rec := get(h, ownMetric, "hpa"); rec.Code != http.StatusOK {
			t.Fatalf("qscale's own metric: %d %s, want 200", rec.Code, rec.Body)
		}
	}
	if got := counterWithCode(t, reg, "qscale_metricsapi_forwarded_requests_total", "503"); got != 2 {
		t.Errorf("qscale_metricsapi_forwarded_requests_total{code=\"503\"} = %v, want 2", got)
	}
	if lines := logged.get(); len(lines) != 1 || !strings.Contains(lines[0], "does not answer") {
		t.Errorf("logged %q, want one line for the outage", lines)
	}
}

// The outage is logged when it starts and when it ends, not at each request; nothing logged
// carries qscale's token.
func TestForwardLogsAnOutageOnce(t *testing.T) {
	var hangUp atomic.Bool
	adapter := newOtherAdapter(t, func(w http.ResponseWriter, _ *http.Request) {
		if hangUp.Load() {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		}
		_, _ = w.Write([]byte(otherList))
	})
	f := adapter.forward(t)
	var logged logLines
	f.Log = logged.logger()
	h := forwardingHandler(t, f, nil, 0)
	for _, step := range []struct {
		hangUp   bool
		wantCode int
	}{{false, 200}, {true, 503}, {true, 503}, {false, 200}, {false, 200}, {true, 503}} {
		hangUp.Store(step.hangUp)
		if rec := get(h, otherMetric, "hpa"); rec.Code != step.wantCode {
			t.Fatalf("hang up %t: code %d, want %d: %s", step.hangUp, rec.Code, step.wantCode, rec.Body)
		}
	}
	lines := logged.get()
	if len(lines) != 3 || !strings.Contains(lines[0], "does not answer") || !strings.Contains(lines[1], "answers again") || !strings.Contains(lines[2], "does not answer") {
		t.Errorf("logged %q, want the outage, the recovery and the next outage", lines)
	}
	for _, l := range lines {
		if strings.Contains(l, "qscale-token") {
			t.Errorf("a log line holds qscale's token: %s", l)
		}
	}
}

// A hung adapter costs a forwarded request its timeout, and never holds qscale's own metrics:
// forwards take at most half of the server's requests in flight.
func TestSlowAdapterLeavesRoomForOwnMetrics(t *testing.T) {
	release := make(chan struct{})
	adapter := newOtherAdapter(t, func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) }) // before the server closes: it waits for its handlers
	f := adapter.forward(t)
	f.Timeout = 2 * time.Second
	h := forwardingHandler(t, f, nil, 2) // one forward at a time

	hung := make(chan *httptest.ResponseRecorder)
	start := time.Now()
	go func() { hung <- get(h, otherMetric, "hpa") }()
	waitFor(t, func() bool { return len(adapter.requests()) == 1 })
	if rec := get(h, ownMetric, "hpa"); rec.Code != http.StatusOK {
		t.Fatalf("qscale's own metric while a forward hangs: %d %s", rec.Code, rec.Body)
	}
	if rec := get(h, metricPath+"s1-other?labelSelector=x%3Dy", "hpa"); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("a second forward while the first hangs: %d %s, want 429", rec.Code, rec.Body)
	}
	rec := <-hung
	if took := time.Since(start); rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "did not answer within 2s") || took > 5*time.Second {
		t.Fatalf("the hung forward: %d %s after %s, want 503 after the 2s timeout", rec.Code, rec.Body, took)
	}
}

func TestForwardCredentialsAndTrust(t *testing.T) {
	adapter := newOtherAdapter(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(otherList)) })
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("projected-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		adjust   func(*metricsapi.Forward)
		wantCode int
		wantAuth string
		wantBody string
	}{
		{name: "a bearer token, the adapter's CA", adjust: func(*metricsapi.Forward) {}, wantCode: 200, wantAuth: "Bearer qscale-token"},
		{name: "a token file, as in a pod", adjust: func(f *metricsapi.Forward) {
			f.Identity = &rest.Config{BearerTokenFile: tokenFile}
		}, wantCode: 200, wantAuth: "Bearer projected-token"},
		{name: "the identity's own CA is not the adapter's", adjust: func(f *metricsapi.Forward) {
			f.Identity.CAData, f.CAFile = []byte("not used"), ""
		}, wantCode: 503, wantBody: "certificate signed by unknown authority"},
		{name: "verification skipped", adjust: func(f *metricsapi.Forward) {
			f.CAFile, f.InsecureSkipTLSVerify = "", true
		}, wantCode: 200, wantAuth: "Bearer qscale-token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := adapter.forward(t)
			tt.adjust(&f)
			before := len(adapter.requests())
			rec := get(forwardingHandler(t, f, nil, 0), otherMetric, "hpa")
			if rec.Code != tt.wantCode || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Fatalf("answer %d %s, want %d with %q", rec.Code, rec.Body, tt.wantCode, tt.wantBody)
			}
			seen := adapter.requests()[before:]
			if tt.wantAuth == "" {
				if len(seen) != 0 {
					t.Fatalf("the adapter was reached: %+v", seen)
				}
				return
			}
			if len(seen) != 1 || seen[0].authorization != tt.wantAuth {
				t.Fatalf("the adapter saw %+v, want Authorization %q", seen, tt.wantAuth)
			}
		})
	}
}

// A redirect from the adapter is answered as it is: qscale's credentials never follow it to
// another server.
func TestForwardNeverFollowsARedirect(t *testing.T) {
	elsewhere := newOtherAdapter(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(otherList)) })
	adapter := newOtherAdapter(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.srv.URL+"/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/s0-rabbitmq-orders", http.StatusFound)
	})
	f := adapter.forward(t)
	f.CAFile, f.InsecureSkipTLSVerify = "", true // both servers' certificates
	rec := get(forwardingHandler(t, f, nil, 0), otherMetric, "hpa")
	if rec.Code != http.StatusFound {
		t.Errorf("answer %d %s, want the adapter's 302", rec.Code, rec.Body)
	}
	if seen := elsewhere.requests(); len(seen) != 0 {
		t.Errorf("the redirect was followed, with %+v", seen)
	}
}

func TestParseForwardURL(t *testing.T) {
	tests := []struct {
		in, want, wantErr string
	}{
		{in: "https://keda-operator-metrics-apiserver.keda.svc:443", want: "https://keda-operator-metrics-apiserver.keda.svc:443"},
		{in: "https://keda-operator-metrics-apiserver.keda.svc/", want: "https://keda-operator-metrics-apiserver.keda.svc"},
		{in: "http://keda:443", wantErr: "the scheme must be https"},
		{in: "keda.svc:443", wantErr: "the scheme must be https"},
		{in: "https://", wantErr: "has no host"},
		{in: "https://qscale@keda:443", wantErr: "holds credentials"},
		{in: "https://keda:443/apis", wantErr: "without a path, query or fragment"},
		{in: "https://keda:443?x=1", wantErr: "without a path, query or fragment"},
		{in: "https://keda:443\x7f", wantErr: "not a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			u, err := metricsapi.ParseForwardURL(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || u.String() != tt.want {
				t.Fatalf("%v, %v; want %s", u, err, tt.want)
			}
		})
	}
}

func TestNewForwarderRefuses(t *testing.T) {
	u, err := metricsapi.ParseForwardURL("https://keda:443")
	if err != nil {
		t.Fatal(err)
	}
	id := &rest.Config{BearerToken: "t"}
	missing := filepath.Join(t.TempDir(), "missing.crt")
	tests := []struct {
		name    string
		f       metricsapi.Forward
		wantErr string
	}{
		{name: "no URL", f: metricsapi.Forward{Identity: id}, wantErr: "no URL"},
		{name: "no identity", f: metricsapi.Forward{URL: u}, wantErr: "no identity"},
		{name: "a CA and no verification", f: metricsapi.Forward{URL: u, Identity: id, CAFile: "ca.crt", InsecureSkipTLSVerify: true}, wantErr: "exclude each other"},
		{name: "a negative timeout", f: metricsapi.Forward{URL: u, Identity: id, Timeout: -time.Second}, wantErr: "negative"},
		{name: "a missing CA file", f: metricsapi.Forward{URL: u, Identity: id, CAFile: missing}, wantErr: missing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := metricsapi.NewForwarder(tt.f, nil); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one with %q", err, tt.wantErr)
			}
		})
	}
}

// logLines collects the lines of a logger, for tests.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, prefix+" "+args)
	}, funcr.Options{})
}

func (l *logLines) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// waitFor polls cond until it holds, for at most 10s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
