package share

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/client-go/rest"

	"github.com/qscale/qscale/internal/shard"
	"github.com/qscale/qscale/scaler/policy"
	"github.com/qscale/qscale/scaler/store"
	"github.com/qscale/qscale/sources"
	"github.com/qscale/qscale/sources/kafka"
)

var orders = store.Target{Namespace: "shop", Kind: store.KindDeployment, Name: "orders"}

func trigger(t *testing.T, topic string) sources.Trigger {
	t.Helper()
	tr, err := sources.Registry{"kafka": kafka.Kind}.Parse(sources.Params{Type: "kafka", Name: topic,
		Metadata: map[string]string{"bootstrapServers": "k:9092", "consumerGroup": "g", "topic": topic}})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// configured is a Store holding orders with the triggers given.
func configured(triggers ...sources.Trigger) *store.Store {
	st := store.New(time.Now, store.Options{})
	st.Configure(orders, policy.Spec{MaxReplicas: 10, PollingInterval: time.Minute, FallbackFailures: 3}, triggers)
	return st
}

func TestDecodeChecksWhatArrives(t *testing.T) {
	now := time.Now()
	good := Sample{Namespace: "shop", Kind: "deployment", Workload: "orders", Trigger: "id", AgeMillis: 1500, Value: 42,
		Counters: &Counters{Backlog: 42, Produced: 100, Consumed: 58, Consumers: 3}, Warnings: []Warning{{Reason: "R", Message: "m"}}}
	target, s, at, err := decode(good, now)
	if err != nil {
		t.Fatal(err)
	}
	if target != orders || s.Value != 42 || s.Counters.Consumed != 58 || len(s.Warnings) != 1 || !at.Equal(now.Add(-1500*time.Millisecond)) {
		t.Errorf("decoded %v %+v at %s", target, s, now.Sub(at))
	}
	failed := good
	failed.Value, failed.Error = math.NaN(), "broker down" // a failed poll's value means nothing
	if _, s, _, err := decode(failed, now); err != nil || s.Err == nil || s.Err.Error() != "broker down" {
		t.Errorf("a failed poll: %+v, %v", s, err)
	}
	for name, change := range map[string]func(*Sample){
		"kind":              func(s *Sample) { s.Kind = "pod" },
		"no workload":       func(s *Sample) { s.Workload = "" },
		"no trigger":        func(s *Sample) { s.Trigger = "" },
		"negative age":      func(s *Sample) { s.AgeMillis = -1 },
		"age over a minute": func(s *Sample) { s.AgeMillis = 61_000 },
		"NaN value":         func(s *Sample) { s.Value = math.NaN() },
		"infinite value":    func(s *Sample) { s.Value = math.Inf(1) },
		"negative value":    func(s *Sample) { s.Value = -1 },
		"negative counter":  func(s *Sample) { s.Counters = &Counters{Produced: -5} },
		"negative consumer": func(s *Sample) { s.Counters = &Counters{Consumers: -1} },
		"long error":        func(s *Sample) { s.Error = strings.Repeat("x", maxText+1) },
		"many warnings":     func(s *Sample) { s.Warnings = make([]Warning, maxWarnings+1) },
		"long warning":      func(s *Sample) { s.Warnings = []Warning{{Reason: "R", Message: strings.Repeat("x", maxText+1)}} },
	} {
		s := good
		change(&s)
		if _, _, _, err := decode(s, now); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func post(h http.Handler, method, body string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, Path, strings.NewReader(body)))
	return w
}

func TestHandlerRecordsWhatHoldsUp(t *testing.T) {
	lag := trigger(t, "lag")
	st := configured(lag)
	reg := prometheus.NewRegistry()
	var notified []store.Target
	h := &Handler{Recorder: st, Notify: func(t store.Target) { notified = append(notified, t) }, Metrics: NewMetrics(reg), Log: logr.Discard()}

	polled := Polled{Target: orders, Trigger: lag, Sample: sources.Sample{Value: 250, Active: true}, At: time.Now().Add(-2 * time.Second)}
	other := Polled{Target: orders, Trigger: trigger(t, "elsewhere"), Sample: sources.Sample{Value: 1}, At: time.Now()}
	bad := encode(polled, time.Now())
	bad.Value = -3
	body, _ := json.Marshal(Batch{From: "b", Samples: []Sample{encode(polled, time.Now()), encode(other, time.Now()), bad}})
	if w := post(h, http.MethodPost, string(body)); w.Code != http.StatusNoContent {
		t.Fatalf("POST answered %d %s", w.Code, w.Body)
	}
	states := st.States(orders)
	if len(states) != 1 || !states[0].Polled || states[0].Value != 250 {
		t.Fatalf("the Store holds %+v, want the sample of 250", states)
	}
	if age := states[0].Age; age < 2*time.Second || age > time.Minute {
		t.Errorf("the sample is %s old, want the 2s it was when sent", age)
	}
	if len(notified) != 1 || notified[0] != orders {
		t.Errorf("notified %v, want orders once", notified)
	}
	for result, want := range map[string]float64{resultRecorded: 1, resultUnknown: 1, resultInvalid: 1} {
		if got := testutil.ToFloat64(h.Metrics.samples.WithLabelValues("received", result)); got != want {
			t.Errorf("received %s: %v, want %v", result, got, want)
		}
	}
	if w := post(h, http.MethodGet, ""); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET answered %d", w.Code)
	}
	if w := post(h, http.MethodPost, "{not json"); w.Code != http.StatusBadRequest {
		t.Errorf("a batch that is not JSON: %d", w.Code)
	}
	huge := `{"samples":[` + strings.Repeat(`{"namespace":"shop"},`, maxBody/20) + `{}]}`
	if w := post(h, http.MethodPost, huge); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("a batch over the limit: %d", w.Code)
	}
}

// A Sender reaches a peer over TLS only when the peer's certificate is the one its Lease
// names, and the peer records what it sends.
func TestSenderReachesPinnedPeers(t *testing.T) {
	lag := trigger(t, "lag")
	st := configured(lag)
	received := make(chan struct{}, 10)
	h := &Handler{Recorder: st, Notify: func(store.Target) { received <- struct{}{} }, Log: logr.Discard()}
	var mu sync.Mutex
	var auth []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "https://")
	peer := shard.Member{Identity: "b", Address: addr, Fingerprint: Fingerprint(srv.Certificate().Raw)}
	impostor := shard.Member{Identity: "c", Address: addr, Fingerprint: strings.Repeat("0", 64)}

	reg := prometheus.NewRegistry()
	s := &Sender{Self: "a", Peers: func() []shard.Member { return []shard.Member{peer, impostor} },
		Client: PinnedClients(&rest.Config{BearerToken: "qscale-token"}), Metrics: NewMetrics(reg), Log: logr.Discard()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Start(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(s.Reconcile()) != 2 { // Start has set its context
		if time.Now().After(deadline) {
			t.Fatal("the Sender never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Send([]Polled{{Target: orders, Trigger: lag, Sample: sources.Sample{Value: 7}, At: time.Now()}})
	select {
	case <-received:
	case <-time.After(10 * time.Second):
		t.Fatal("the peer never received the sample")
	}
	if states := st.States(orders); states[0].Value != 7 {
		t.Errorf("the peer holds %+v, want 7", states[0])
	}
	for testutil.ToFloat64(s.Metrics.samples.WithLabelValues("sent", resultFailed)) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the post to the impostor did not fail")
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(auth) != 1 || auth[0] != "Bearer qscale-token" {
		t.Errorf("the peer saw Authorization %q, want the one of qscale's credentials, once (the impostor's TLS handshake fails first)", auth)
	}
}

func TestPinRefusesOtherCertificates(t *testing.T) {
	check := pin(Fingerprint([]byte("cert")))
	leaf := func(raw string) []*x509.Certificate { return []*x509.Certificate{{Raw: []byte(raw)}} }
	if err := check(tls.ConnectionState{PeerCertificates: leaf("cert")}); err != nil {
		t.Errorf("the pinned certificate: %v", err)
	}
	for name, peers := range map[string][]*x509.Certificate{"another": leaf("other"), "none": nil} {
		if err := check(tls.ConnectionState{PeerCertificates: peers}); err == nil {
			t.Errorf("%s certificate: accepted", name)
		}
	}
}
