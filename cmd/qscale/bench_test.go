package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/qscale/qscale/scaler/spec"
	"github.com/qscale/qscale/scaler/store"
	"github.com/qscale/qscale/sources"
)

// BenchmarkMetricsAPI measures the external metrics API answering the HPA's requests for
// 1,000 workloads from the store, over TLS with keep-alive, from 8 concurrent clients, each
// pacing itself to a steady rate: the time of one request, p50 and p99.
func BenchmarkMetricsAPI(b *testing.B) {
	const workloads = 1000
	st := store.New(time.Now, store.Options{})
	for i := range workloads {
		t := store.Target{Namespace: "shop", Kind: store.KindDeployment, Name: fmt.Sprintf("w%d", i)}
		config, triggers, err := spec.Load(map[string]string{spec.AnnotationTriggers: "- type: kafka\n  name: lag\n  metadata: {bootstrapServers: 'k:9092', consumerGroup: g, topic: t}\n"}, registry, nil)
		if err != nil {
			b.Fatal(err)
		}
		triggers, _ = st.Configure(t, config.Policy(), triggers)
		st.Record(t, triggers[0], sources.Sample{Value: float64(i), Active: true}, time.Now())
		st.Decide(t, store.Replicas{Spec: 5, Status: 5})
	}
	srv := httptest.NewTLSServer(metricsHandler(b, storeValues{st}))
	defer srv.Close()
	client := srv.Client()
	transport := client.Transport.(*http.Transport)
	transport.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the test server's own certificate
	transport.MaxIdleConnsPerHost = 8                                 // one kept-alive connection per client, as the aggregator keeps

	const clients = 8
	const interval = 16 * time.Millisecond // per client: 500 requests/s in all, 1,000 HPAs syncing every 2 s
	var mu sync.Mutex
	var durations []time.Duration
	b.ResetTimer()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			tick := time.NewTicker(interval)
			defer tick.Stop()
			var mine []time.Duration
			for i := c; i < b.N; i += clients {
				<-tick.C
				url := fmt.Sprintf("%s/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/qscale-lag?labelSelector=qscale.io/kind=deployment,qscale.io/name=w%d", srv.URL, i%workloads)
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				req.Header.Set("Authorization", "Bearer hpa")
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body) // a drained body lets the connection be reused
				_ = resp.Body.Close()
				mine = append(mine, time.Since(start))
				if resp.StatusCode != http.StatusOK {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
			mu.Lock()
			durations = append(durations, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	b.StopTimer()
	if len(durations) == 0 {
		return
	}
	slices.Sort(durations)
	b.ReportMetric(float64(durations[len(durations)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(durations[len(durations)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}
