package activemqtest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/qscale/qscale/internal/activemqtest"
)

// The harness's promises, end to end: Jolokia answers KEDA's URL with the depth that Send
// and Consume leave, and a restart on the same ports keeps the queue.
func TestBroker(t *testing.T) {
	b := activemqtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.Send(ctx, "orders", 5); err != nil {
		t.Fatal(err)
	}
	if err := b.Consume(ctx, "orders", 2); err != nil {
		t.Fatal(err)
	}
	if got := queueSize(t, b, "orders"); got != 3 {
		t.Fatalf("QueueSize = %d, want 3", got)
	}
	b.Stop()
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := queueSize(t, b, "orders"); got != 3 {
		t.Fatalf("after a restart QueueSize = %d, want 3", got)
	}
}

func queueSize(t *testing.T, b *activemqtest.Broker, queue string) int {
	t.Helper()
	url := fmt.Sprintf("http://%s/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=%s,destinationType=Queue,destinationName=%s/QueueSize",
		b.JolokiaAddr, b.Name, queue)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(b.User, b.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var r struct {
		Value  int `json:"value"`
		Status int `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != http.StatusOK {
		t.Fatalf("jolokia: %s, status %d, %v", resp.Status, r.Status, err)
	}
	return r.Value
}
