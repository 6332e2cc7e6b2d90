package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/rest"
	"k8s.io/metrics/pkg/apis/external_metrics/v1beta1"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/apiserver"

	"github.com/qscale/qscale/metricsapi"
	"github.com/qscale/qscale/scaler"
	"github.com/qscale/qscale/scaler/spec"
	"github.com/qscale/qscale/scaler/store"
	"github.com/qscale/qscale/sources"
)

// The metrics API serves the lag a poll read, and serving it never sends a request to the
// broker: 100 API calls, 0 Kafka requests.
func TestMetricsAPIServesPolledLagWithoutBrokerRequests(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(4, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	var kafkaRequests atomic.Int64
	cluster.Control(func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		kafkaRequests.Add(1)
		return nil, nil, false
	})
	seed(t, cluster)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := store.New(time.Now, store.Options{})
	target := store.Target{Namespace: "shop", Kind: store.KindDeployment, Name: "orders"}
	var decided sync.WaitGroup
	decided.Add(1)
	var once sync.Once
	poller := scaler.NewPoller(sources.NewPool(registry), st, func(t store.Target) {
		st.Decide(t, store.Replicas{Spec: 4, Status: 4})
		once.Do(decided.Done)
	}, nil, nil)
	go func() { _ = poller.Start(ctx) }()

	config, triggers, err := spec.Load(map[string]string{
		spec.AnnotationTriggers:        "- type: kafka\n  name: lag\n  metadata: {bootstrapServers: '" + strings.Join(cluster.ListenAddrs(), ",") + "', consumerGroup: workers, topic: orders, lagThreshold: '100'}\n",
		spec.AnnotationPollingInterval: "1h", // one poll now, the next long after the test
	}, registry, nil)
	if err != nil {
		t.Fatal(err)
	}
	triggers, _ = st.Configure(target, config.Policy(), triggers)
	poller.Set(target, triggers, config.PollingInterval)
	decided.Wait()

	handler := metricsHandler(t, storeValues{st})
	before := kafkaRequests.Load()
	for range 100 {
		req := httptest.NewRequest(http.MethodGet, "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/qscale-lag?labelSelector=qscale.io/kind=deployment,qscale.io/name=orders", nil)
		req.Header.Set("Authorization", "Bearer hpa")
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		var list v1beta1.ExternalMetricValueList
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &list) != nil || list.Items[0].Value.Value() != 400 {
			t.Fatalf("code %d: %s; want lag 400", rec.Code, rec.Body.String())
		}
	}
	if n := kafkaRequests.Load() - before; n != 0 {
		t.Fatalf("100 metrics API calls sent %d Kafka requests, want 0", n)
	}
}

// seed writes 100 records to each of the 4 partitions of orders and commits the group at 0.
func seed(t *testing.T, cluster *kfake.Cluster) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var recs []*kgo.Record
	offsets := kadm.Offsets{}
	for p := range int32(4) {
		for range 100 {
			recs = append(recs, &kgo.Record{Topic: "orders", Partition: p, Value: []byte("m")})
		}
		offsets.AddOffset("orders", p, 0, -1)
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := kadm.NewClient(cl).CommitAllOffsets(ctx, "workers", offsets); err != nil {
		t.Fatal(err)
	}
}

// metricsHandler builds the metrics API handler chain with a token authenticator.
func metricsHandler(t testing.TB, values metricsapi.Values) http.Handler {
	t.Helper()
	cfg := genericapiserver.NewRecommendedConfig(apiserver.Codecs)
	cfg.LoopbackClientConfig = &rest.Config{}
	cfg.ExternalAddress = "localhost:443"
	cfg.Authentication.Authenticator = bearertoken.New(authenticator.TokenFunc(func(_ context.Context, token string) (*authenticator.Response, bool, error) {
		return &authenticator.Response{User: &user.DefaultInfo{Name: token}}, token == "hpa", nil
	}))
	cfg.Authorization.Authorizer = authorizerfactory.NewAlwaysAllowAuthorizer()
	srv, err := metricsapi.NewServer(&cfg.Config, metricsapi.NewProvider(values), nil)
	if err != nil {
		t.Fatal(err)
	}
	return srv.GenericAPIServer.Handler
}
