package rabbitmq_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/qscale/qscale/sources"
	"github.com/qscale/qscale/sources/internal/sourcetest"
	"github.com/qscale/qscale/sources/rabbitmq"
)

// The broker that .ci/rabbitmq.sh starts: Debian's rabbitmq-server with its management plugin.
const (
	amqpAddr = "127.0.0.1:5672"
	apiBase  = "http://127.0.0.1:15672"
)

var registry = sources.Registry{"rabbitmq": rabbitmq.Kind}

var (
	brokerOnce sync.Once
	brokerErr  error
)

// broker fails the test, rather than skipping it, when RabbitMQ is not there: a skipped
// integration test reads as a passing one.
func broker(t testing.TB) {
	t.Helper()
	brokerOnce.Do(func() {
		c, err := net.DialTimeout("tcp", amqpAddr, 2*time.Second)
		if err != nil {
			brokerErr = fmt.Errorf("AMQP: %w", err)
			return
		}
		_ = c.Close()
		if code, body := apiCall(apiBase+"/api/overview", http.MethodGet, nil); code != http.StatusOK {
			brokerErr = fmt.Errorf("management API: %d %s", code, body)
		}
	})
	if brokerErr != nil {
		t.Fatalf("RabbitMQ is not reachable at %s with its management API at %s (%v): run .ci/rabbitmq.sh", amqpAddr, apiBase, brokerErr)
	}
}

// apiCall sends one request to the management API as guest; code 0 means no answer.
func apiCall(u, method string, body any) (int, string) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, err.Error()
	}
	req.SetBasicAuth("guest", "guest")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// api calls the management API at path and fails the test unless it answers 2xx.
func api(t testing.TB, method, path string, body any) string {
	t.Helper()
	code, text := apiCall(apiBase+"/api"+path, method, body)
	if code < 200 || code > 299 {
		t.Fatalf("%s %s: %d %s", method, path, code, text)
	}
	return text
}

func esc(s string) string { return url.PathEscape(s) }

func unique(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// newVhost creates a vhost of its own for the test, open to guest, and deletes it (with its
// queues and connections) when the test ends.
func newVhost(t testing.TB) string {
	t.Helper()
	broker(t)
	v := unique("qscale-test")
	api(t, http.MethodPut, "/vhosts/"+esc(v), nil)
	t.Cleanup(func() { apiCall(apiBase+"/api/vhosts/"+esc(v), http.MethodDelete, nil) })
	api(t, http.MethodPut, "/permissions/"+esc(v)+"/guest", map[string]string{"configure": ".*", "write": ".*", "read": ".*"})
	return v
}

func createQueues(t testing.TB, vhost string, names ...string) {
	t.Helper()
	for _, n := range names {
		api(t, http.MethodPut, "/queues/"+esc(vhost)+"/"+esc(n), map[string]any{"durable": false})
	}
}

func deleteQueue(t testing.TB, vhost, name string) {
	t.Helper()
	api(t, http.MethodDelete, "/queues/"+esc(vhost)+"/"+esc(name), nil)
}

// vhostConnections returns the names of qscale's connections to vhost (the Source names
// its connections "qscale"; the publisher's do not count).
func vhostConnections(t testing.TB, vhost string) []string {
	t.Helper()
	var conns []struct {
		Name   string `json:"name"`
		Client struct {
			Name string `json:"connection_name"`
		} `json:"client_properties"`
	}
	if err := json.Unmarshal([]byte(api(t, http.MethodGet, "/vhosts/"+esc(vhost)+"/connections", nil)), &conns); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range conns {
		if c.Client.Name == "qscale" {
			names = append(names, c.Name)
		}
	}
	return names
}

// eventually retries check until it returns "" or the deadline passes, then fails with its
// last complaint. The management API learns of connections a moment after they change.
func eventually(t testing.TB, within time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", within, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wantOneConnection waits until the management API lists exactly one qscale connection to
// vhost and returns its name. The API lists a connection up to 5 s (its statistics interval)
// after it opens, and forgets it at once when it closes.
func wantOneConnection(t testing.TB, vhost string) string {
	t.Helper()
	return wantOneConnectionBut(t, vhost, "")
}

// wantOneConnectionBut waits until the vhost has one qscale connection, other than the one
// named old: the management API lists a closed connection until the broker has finished
// closing it, and a new one only after its next statistics event.
func wantOneConnectionBut(t testing.TB, vhost, old string) string {
	t.Helper()
	var names []string
	eventually(t, 15*time.Second, func() string {
		if names = vhostConnections(t, vhost); len(names) != 1 || names[0] == old {
			return fmt.Sprintf("vhost %s has qscale connections %q, want one other than %q", vhost, names, old)
		}
		return ""
	})
	return names[0]
}

// publisher publishes over its own AMQP connection with confirms, so that the messages are
// in their queues when publish returns.
type publisher struct {
	conn *amqp.Connection
	ch   *amqp.Channel
}

func newPublisher(t testing.TB, vhost string) *publisher {
	t.Helper()
	conn, err := amqp.DialConfig("amqp://guest:guest@"+amqpAddr+"/", amqp.Config{Vhost: vhost})
	if err != nil {
		t.Fatalf("publisher: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	return &publisher{conn: conn, ch: ch}
}

func (p *publisher) publish(t testing.TB, queue string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range n {
		dc, err := p.ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false, amqp.Publishing{Body: []byte("m")})
		if err != nil {
			t.Fatalf("publish to %s: %v", queue, err)
		}
		if ok, err := dc.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("publish to %s not confirmed: %v", queue, err)
		}
	}
}

// holdUnacked delivers n messages of queue to a consumer that never acknowledges them, until
// the test ends: they are then unacknowledged, no longer ready.
func (p *publisher) holdUnacked(t testing.TB, queue string, n int) {
	t.Helper()
	ch, err := p.conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Qos(n, 0, false); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		select {
		case <-deliveries:
		case <-time.After(5 * time.Second):
			t.Fatalf("no delivery from %s", queue)
		}
	}
}

func amqpURL(vhost string) string { return "amqp://guest:guest@" + amqpAddr + "/" + esc(vhost) }
func httpURL(vhost string) string { return "http://guest:guest@127.0.0.1:15672/" + esc(vhost) }

// md builds trigger metadata from key, value pairs.
func md(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// parse builds a rabbitmq trigger, failing the test on a configuration error.
func parse(t testing.TB, metadata, secret map[string]string) sources.Trigger {
	t.Helper()
	return sourcetest.Parse(t, registry, "rabbitmq", metadata, secret)
}

func newPool(t testing.TB) *sources.Pool { return sourcetest.NewPool(t, registry) }

func poll(_ testing.TB, pool *sources.Pool, triggers ...sources.Trigger) []sources.Sample {
	return sourcetest.Poll(pool, 10*time.Second, triggers...)
}

// wantSample checks a sample as sourcetest.WantSample does; no error may reveal the
// credentials of a host URL.
func wantSample(t testing.TB, got sources.Sample, value float64, active bool, wantErr ...string) {
	t.Helper()
	sourcetest.WantSample(t, got, "guest@", value, active, wantErr...)
}
